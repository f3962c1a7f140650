/**
 * The workers' batches (lib/workers/trace/record.ts, checked against schema.ts there at the collector's edge), and the
 * log lines the collector makes of them: one per request (from the gateway's access record) and one per
 * console.* call of a function, each with its request id.
 */

export type Level = "debug" | "info" | "warn" | "error";
const LEVELS: Level[] = ["debug", "info", "warn", "error"];

/** console.log/info → info, console.debug → debug, console.warn → warn, console.error → error. */
export function levelOf(consoleLevel: string): Level {
  if (consoleLevel === "log") return "info";
  return (LEVELS as string[]).includes(consoleLevel) ? (consoleLevel as Level) : "info";
}

/** True when `level` is at least `min`. */
export const atLeast = (level: Level, min: Level) => LEVELS.indexOf(level) >= LEVELS.indexOf(min);

export interface RequestLine {
  time: string;
  type: "request";
  level: Level;
  requestId: string;
  function: string | null;
  method: string;
  path: string;
  status: number;
  durationMs: number;
  clientIp: string;
}

export interface ConsoleLine {
  time: string;
  type: "log";
  level: Level;
  requestId: string | null;
  function: string;
  /** For a line logged by a cron run. */
  cron?: string;
  message: string;
}

export interface ScheduledLine {
  time: string;
  type: "scheduled";
  level: Level;
  function: string;
  cron: string;
  outcome: string;
}

export type LogLine = RequestLine | ConsoleLine | ScheduledLine;

/** A request's level: 5xx error, 4xx warn, else info. */
export const statusLevel = (status: number): Level => (status >= 500 ? "error" : status >= 400 ? "warn" : "info");

/** A logged error as the platform logs it (lib/sdk/error-details.ts): `{ name, message, stack }`. */
export interface LoggedError {
  name: string;
  message: string;
  stack: string;
}

export function loggedError(value: unknown): LoggedError | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  return typeof v.name === "string" && typeof v.message === "string" && typeof v.stack === "string"
    ? { name: v.name, message: v.message, stack: v.stack }
    : undefined;
}

/** A console call's arguments as one line of text, as console.log would print them. */
export function messageText(args: unknown[]): string {
  return args
    .map((a) => {
      if (typeof a === "string") return a;
      const err = loggedError(a);
      if (err) return `${err.name}: ${err.message}`;
      return JSON.stringify(a) ?? String(a);
    })
    .join(" ");
}
