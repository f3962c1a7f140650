/**
 * The workers' batches (lib/workers/trace/record.ts), validated at the collector's edge, and the
 * log lines the collector makes of them: one per request (from the gateway's access record) and one per
 * console.* call of a function, each with its request id.
 */
import { z } from "zod";
import type { TraceRecord } from "../../workers/trace/record.ts";
import { BREAKER_STATES, TRY_OUTCOMES } from "../../shared/outbound-event.ts";
import { UPSTREAM_NAME } from "../../shared/upstream-policy.ts";

const access = z.object({
  id: z.string().max(200),
  fn: z.string().max(200).nullable(),
  method: z.string().max(32),
  path: z.string().max(2048),
  status: z.number().int(),
  ms: z.number().nonnegative(),
  ip: z.string().max(100),
  inflight: z.number().int().nonnegative(),
  proc: z.string().max(100),
});

const outboundEvent = z.object({
  upstream: z.string().regex(UPSTREAM_NAME),
  attempt: z.number().int().min(0).max(100),
  outcome: z.enum(TRY_OUTCOMES),
  status: z.number().int().optional(),
  ms: z.number().nonnegative(),
  state: z.enum(BREAKER_STATES),
  since: z.number().nonnegative(),
  scope: z.enum(["shared", "isolate"]),
  change: z.enum(BREAKER_STATES).optional(),
});

const count = z.number().int().nonnegative().max(1e9);

const record = z.object({
  worker: z.string().max(200),
  ts: z.number(),
  outcome: z.string().max(64),
  request: z.object({ id: z.string().nullable(), method: z.string(), url: z.string(), status: z.number().int().nullable() }).optional(),
  cron: z.string().optional(),
  access: z.array(access),
  logs: z.array(z.object({ ts: z.number(), level: z.string().max(16), message: z.array(z.unknown()) })),
  exceptions: z.array(z.object({ ts: z.number(), name: z.string(), message: z.string(), stack: z.string() })),
  outbound: z.array(outboundEvent).max(1000).optional(),
  dbCache: z.object({ hit: count, miss: count, bypass: count, local: count, remote: count }).partial().optional(),
});

export const batchSchema = z.array(record) satisfies z.ZodType<TraceRecord[]>;

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
