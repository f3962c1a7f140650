/**
 * The tail worker: workerd hands it the trace of every invocation of the gateway and of each function
 * (logs, exceptions, the request and its status, cron runs, the gateway's access records). It keeps the
 * parts the platform uses and POSTs them in batches to the supervisor's collector on loopback, which
 * writes the request log, keeps the metrics and records errors. The worker's name comes in through
 * `props` (workerd leaves `scriptName` null).
 *
 * Batching: records go into a buffer shared by all invocations of this isolate; the first invocation that
 * finds no flush pending keeps itself alive (waitUntil) for FLUSH_AFTER_MS and then sends everything
 * gathered by then. Only plain data crosses invocations, never an I/O object.
 */
import type { AccessRecord, TraceRecord } from "./trace-record.ts";
import { ACCESS_CHANNEL } from "./trace-record.ts";

export interface TailEnv {
  WORKYARD_COLLECTOR_URL?: string | null;
  WORKYARD_COLLECTOR_TOKEN?: string | null;
}

const FLUSH_AFTER_MS = 100;
const MAX_BATCH = 500;
/** A flusher that has not finished after this long is taken as lost (its invocation was cancelled). */
const FLUSH_LOST_MS = 5_000;
const MAX_LOG_CHARS = 8_192;

const buffer: TraceRecord[] = [];
let flushSince = 0;

/** A log argument, bounded: strings as they are, anything else as workerd serialized it. */
function bounded(value: unknown): unknown {
  if (typeof value === "string") return value.length > MAX_LOG_CHARS ? `${value.slice(0, MAX_LOG_CHARS)}…` : value;
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > MAX_LOG_CHARS ? `${text.slice(0, MAX_LOG_CHARS)}…` : value;
}

/** The parts of a trace item the collector uses. */
export function toRecord(item: TraceItem, worker: string): TraceRecord {
  const event = item.event as Partial<TraceItemFetchEventInfo & TraceItemScheduledEventInfo> | null;
  const record: TraceRecord = {
    worker,
    ts: item.eventTimestamp ?? Date.now(),
    outcome: item.outcome,
    access: item.diagnosticsChannelEvents.filter((e) => e.channel === ACCESS_CHANNEL).map((e) => e.message as AccessRecord),
    logs: item.logs.map((l) => ({
      ts: l.timestamp,
      level: l.level,
      message: (Array.isArray(l.message) ? (l.message as unknown[]) : [l.message]).map(bounded),
    })),
    exceptions: item.exceptions.map((e) => ({ ts: e.timestamp, name: e.name, message: e.message, stack: e.stack ?? "" })),
  };
  // The gateway's access record already has the request (and its id): reading the traced request costs
  // workerd a copy of every header, so only function traces do it.
  if (event?.request && record.access.length === 0) {
    record.request = {
      id: event.request.headers["x-request-id"] ?? null,
      method: event.request.method,
      url: event.request.url,
      status: event.response?.status ?? null,
    };
  }
  if (typeof event?.cron === "string") record.cron = event.cron;
  return record;
}

async function send(env: TailEnv, batch: TraceRecord[]): Promise<void> {
  if (batch.length === 0 || !env.WORKYARD_COLLECTOR_URL) return;
  try {
    const res = await fetch(`${env.WORKYARD_COLLECTOR_URL}/ingest`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.WORKYARD_COLLECTOR_TOKEN ?? ""}`, "content-type": "application/json" },
      body: JSON.stringify(batch),
    });
    await res.body?.cancel();
  } catch (err) {
    // The collector is down (the supervisor restarts): these records are lost, the functions are not affected.
    console.error(`tail: could not deliver ${batch.length} trace record(s) to the collector: ${(err as Error).message}`);
  }
}

export default {
  tail(events: TraceItem[], env: TailEnv, ctx: ExecutionContext<{ worker?: string }>): void {
    if (!env.WORKYARD_COLLECTOR_URL) return;
    const worker = ctx.props?.worker ?? "unknown";
    for (const item of events) buffer.push(toRecord(item, worker));
    if (buffer.length >= MAX_BATCH) {
      ctx.waitUntil(send(env, buffer.splice(0)));
      return;
    }
    const now = Date.now();
    if (flushSince !== 0 && now - flushSince < FLUSH_LOST_MS) return;
    flushSince = now;
    ctx.waitUntil(
      new Promise((resolve) => setTimeout(resolve, FLUSH_AFTER_MS)).then(() => {
        flushSince = 0;
        return send(env, buffer.splice(0));
      }),
    );
  },
};
