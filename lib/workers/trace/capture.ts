/**
 * What an isolate keeps for the trace of each invocation it runs, instead of a tail worker (a trace built and a tail
 * invocation per request, measured at about a fifth of a small hosted request's CPU): console lines, the outbound
 * helper's tries and the read cache's counts, kept apart per invocation with AsyncLocalStorage. The gateway
 * (gateway.ts) and every function's own worker (function.ts) make their records from it.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { subscribe } from "node:diagnostics_channel";
import { boundedLogValue } from "./record.ts";
import type { TraceRecord } from "./record.ts";
import { OUTBOUND_CHANNEL } from "../../shared/outbound-event.ts";
import type { OutboundEvent } from "../../shared/outbound-event.ts";
import { DB_CACHE_CHANNEL } from "../../shared/db-cache-event.ts";
import type { DbCacheCounts, DbCacheEvent } from "../../shared/db-cache-event.ts";

type LogLine = TraceRecord["logs"][number];
type Exception = TraceRecord["exceptions"][number];

/** What one invocation's record collects while it runs. */
export interface Captured {
  logs: LogLine[];
  outbound: OutboundEvent[];
  dbCache?: DbCacheCounts;
  /**
   * Set once the invocation's record is made (its answer is out, or its handler returned): what it keeps logging
   * after that (work it handed to waitUntil) is handed here, in a capture of its own, instead of being lost.
   */
  late?: (after: Captured) => void;
  /** Until when (ms since the epoch) `late` takes them; after that they go with what happens between invocations. */
  lateUntil?: number;
  /** Lines and events handed to `late` so far: bounded as those of the invocation itself are. */
  lateKept?: number;
}

/**
 * How long after its record an invocation's later lines are still its own: waitUntil work ends well within it, and
 * what goes on after it (a timer or a connection started by a request to a host object, which outlives it) is the
 * isolate's, not that request's.
 */
const LATE_WINDOW_MS = 60_000;

/** Marks `kept`'s record made: from now on its lines go to `late`, for LATE_WINDOW_MS. */
export function recordMade(kept: Captured, late: (after: Captured) => void): void {
  kept.late = late;
  kept.lateUntil = Date.now() + LATE_WINDOW_MS;
}

/** Runs `work` outside any invocation: what it (and what it starts) logs belongs to the isolate, not to the caller. */
export function outsideInvocations<T>(work: () => T): T {
  return current.run(between, work);
}

const LEVELS = ["debug", "info", "log", "warn", "error"] as const;
/** Lines kept for one invocation (or between invocations); more are counted in one last line. */
const MAX_LINES = 100;
/** Outbound events kept for one invocation; more are dropped (the metrics then undercount that invocation's tries). */
const MAX_EVENTS = 200;

const current = new AsyncLocalStorage<Captured>();
/** console.error as workerd has it, before capturing: for the trace's own troubles, which must not make records. */
const printError = console.error.bind(console);
/**
 * What was logged or published outside any invocation (a listener's callback, a timer a host object keeps, lines
 * an invocation logs past its late window): sent with the next record. Lines at module start-up come before the
 * console is captured (at the first invocation) and are only printed, as workerd prints every line.
 */
const between: Captured = { logs: [], outbound: [] };
let started = false;

export const emptyCapture = (): Captured => ({ logs: [], outbound: [] });

/** A console argument as JSON-safe data: an Error as its name, message and stack (as the collector reads errors), what JSON cannot hold as text. */
function logValue(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: String(boundedLogValue(value.stack ?? "")) };
  if (value === undefined || typeof value === "function" || typeof value === "symbol" || typeof value === "bigint") return String(value);
  try {
    return boundedLogValue(value);
  } catch {
    return String(value);
  }
}

/** Where what happens now is dropped: after an invocation's record, past the bound. */
const discarded = (): Captured => ({ logs: [], outbound: [] });

/**
 * The capture that what happens now belongs to; after its invocation's record is made, a fresh one handed to `late`
 * (one per line or event, up to MAX_LINES of them, then one line that says the rest were not kept).
 */
function target(): Captured {
  const store = current.getStore() ?? between;
  if (!store.late) return store;
  if (Date.now() > (store.lateUntil ?? 0)) return between;
  const kept = (store.lateKept = (store.lateKept ?? 0) + 1);
  if (kept > MAX_LINES + 1) return discarded();
  const after = emptyCapture();
  if (kept === MAX_LINES + 1) {
    after.logs.push({
      ts: Date.now(),
      level: "warn",
      message: [`more than ${MAX_LINES} console lines after the answer; the rest are not kept`],
    });
    queueMicrotask(() => store.late?.(after));
    return discarded();
  }
  queueMicrotask(() => store.late?.(after));
  return after;
}

function keep(lines: LogLine[], level: string, args: unknown[]): void {
  if (lines.length < MAX_LINES) lines.push({ ts: Date.now(), level, message: args.map(logValue) });
  else if (lines.length === MAX_LINES)
    lines.push({ ts: Date.now(), level: "warn", message: [`more than ${MAX_LINES} console lines; the rest are not kept`] });
}

function count(counts: DbCacheCounts, event: DbCacheEvent): void {
  if ("read" in event) counts[event.read] = (counts[event.read] ?? 0) + 1;
  else counts[event.invalidated] = (counts[event.invalidated] ?? 0) + event.count;
}

/** Makes console.* also keep each line for the trace, and listens to the platform's channels (once per isolate); workerd still prints every line. */
function startCapturing(): void {
  if (started) return;
  started = true;
  for (const level of LEVELS) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      original(...args);
      keep(target().logs, level, args);
    };
  }
  subscribe(OUTBOUND_CHANNEL, (message) => {
    const kept = target().outbound;
    if (kept.length < MAX_EVENTS) kept.push(message as OutboundEvent);
  });
  subscribe(DB_CACHE_CHANNEL, (message) => {
    const into = target();
    count((into.dbCache ??= {}), message as DbCacheEvent);
  });
}

/**
 * Prints an error line as console.error does and keeps it in `into`, without AsyncLocalStorage: for the gateway's own
 * lines about a request that runs no function code in its isolate (and so is not run in a context of its own).
 */
export function errorInto(into: Captured, ...args: unknown[]): void {
  printError(...args);
  keep(into.logs, "error", args);
}

/** Prints a line without keeping it for any trace (a record about a lost record would make another). */
export function printOnly(...args: unknown[]): void {
  printError(...args);
}

/** Runs `work` with what it logs and publishes kept in `into`. */
export function capturing<T>(into: Captured, work: () => T): T {
  startCapturing();
  return current.run(into, work);
}

/** Whether `kept` holds no line, event or count. */
export const capturedNothing = (kept: Captured): boolean => kept.logs.length === 0 && kept.outbound.length === 0 && !kept.dbCache;

/** What was kept outside any invocation since the last call, or undefined when nothing was. */
export function takeBetween(): Captured | undefined {
  if (capturedNothing(between)) return undefined;
  const taken: Captured = {
    logs: between.logs.splice(0),
    outbound: between.outbound.splice(0),
    ...(between.dbCache ? { dbCache: between.dbCache } : {}),
  };
  delete between.dbCache;
  return taken;
}

/** The record's parts that come from a capture. */
export function capturedParts(kept: Captured): Pick<TraceRecord, "logs" | "outbound" | "dbCache"> {
  return {
    logs: kept.logs,
    ...(kept.outbound.length > 0 ? { outbound: kept.outbound } : {}),
    ...(kept.dbCache ? { dbCache: kept.dbCache } : {}),
  };
}

/** A thrown value as the record's exception: the stack without its first line, which repeats the name and message (as workerd's traces give it). */
export function exceptionOf(thrown: unknown): Exception {
  const err = thrown instanceof Error ? thrown : new Error(String(thrown));
  const stack = err.stack ?? "";
  const head = `${err.name}: ${err.message}`;
  return {
    ts: Date.now(),
    name: err.name,
    message: err.message,
    stack: String(boundedLogValue(stack.startsWith(head) ? stack.slice(head.length).replace(/^\n/, "") : stack)),
  };
}
