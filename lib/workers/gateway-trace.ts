/**
 * The gateway's own trace: instead of a tail worker (a trace built and a tail invocation per request, about a
 * third of the CPU of a small request), the gateway makes its record of each request in its isolate and hands
 * it to trace-sender.ts, which batches records to the collector. The record is what the tail worker makes for
 * a function: the access record, and the console lines logged while the request ran (the gateway's own and
 * those of the functions in its isolate), kept apart per request with AsyncLocalStorage.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { subscribe } from "node:diagnostics_channel";
import type { AccessRecord, TraceRecord } from "./trace-record.ts";
import { boundedLogValue } from "./trace-record.ts";
import { deliver } from "./trace-sender.ts";
import type { CollectorEnv } from "./trace-sender.ts";
import { COLLECTOR_URL_VAR } from "../shared/names.ts";
import { OUTBOUND_CHANNEL } from "../shared/outbound-event.ts";
import type { OutboundEvent } from "../shared/outbound-event.ts";

type LogLine = TraceRecord["logs"][number];

const LEVELS = ["debug", "info", "log", "warn", "error"] as const;
/** Lines kept for one request (or between requests); more are counted in one last line. */
const MAX_LINES = 100;
/** What one request's record collects while it runs: console lines and outbound events. */
interface Kept {
  logs: LogLine[];
  outbound: OutboundEvent[];
}
const current = new AsyncLocalStorage<Kept>();
/** What was logged or published outside any request (module start-up, the drain entrypoint, a queue() run), sent in a record of its own with the next request's. */
const between: Kept = { logs: [], outbound: [] };
/** Outbound events kept for one request; more are dropped (the metrics then undercount that request's tries). */
const MAX_EVENTS = 200;
let capturing = false;

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

function keep(lines: LogLine[], level: string, args: unknown[]): void {
  if (lines.length < MAX_LINES) lines.push({ ts: Date.now(), level, message: args.map(logValue) });
  else if (lines.length === MAX_LINES)
    lines.push({ ts: Date.now(), level: "warn", message: [`more than ${MAX_LINES} console lines; the rest are not kept`] });
}

/** Makes console.* also keep each line for the trace (once per isolate); workerd still prints them as before. */
function captureConsole(): void {
  if (capturing) return;
  capturing = true;
  for (const level of LEVELS) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      original(...args);
      keep((current.getStore() ?? between).logs, level, args);
    };
  }
  subscribe(OUTBOUND_CHANNEL, (message) => {
    const kept = (current.getStore() ?? between).outbound;
    if (kept.length < MAX_EVENTS) kept.push(message as OutboundEvent);
  });
}

const gatewayRecord = (ts: number, access: AccessRecord[], kept: Kept): TraceRecord => ({
  worker: "gateway",
  ts,
  outcome: "ok",
  access,
  logs: kept.logs,
  exceptions: [],
  ...(kept.outbound.length > 0 ? { outbound: kept.outbound } : {}),
});

/**
 * Runs one request's work with its console lines kept apart, then `done`, then `record` gives its access record;
 * the trace goes to the collector. Without a collector configured, it only runs the work and `done`.
 */
export async function traced(
  env: CollectorEnv,
  ctx: ExecutionContext,
  work: () => Promise<Response>,
  done: () => void,
  record: (response: Response | undefined) => AccessRecord,
): Promise<Response> {
  if (!env[COLLECTOR_URL_VAR]) {
    try {
      return await work();
    } finally {
      done();
    }
  }
  captureConsole();
  const started = Date.now();
  if (between.logs.length > 0 || between.outbound.length > 0)
    deliver([gatewayRecord(started, [], { logs: between.logs.splice(0), outbound: between.outbound.splice(0) })], env, ctx);
  const kept: Kept = { logs: [], outbound: [] };
  let response: Response | undefined;
  try {
    return (response = await current.run(kept, work));
  } finally {
    done();
    deliver([gatewayRecord(started, [record(response)], kept)], env, ctx);
  }
}
