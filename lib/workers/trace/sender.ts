/**
 * Delivering trace records in batches: the gateway and the internal worker send theirs to the supervisor's collector
 * on loopback; a function's worker hands its own to the internal worker's trace sink (sink.ts), which holds the
 * collector's token so that function code never does.
 *
 * Records go into a buffer shared by all invocations of the isolate; the first invocation that finds no flush
 * pending keeps itself alive (waitUntil) for FLUSH_AFTER_MS and then sends everything gathered by then. Only
 * plain data crosses invocations, never an I/O object (a binding from `env` is not one: it is the worker's).
 *
 * A run of requests the gateway answered without a line or an event (a static asset, most API calls) shares one
 * record: its access records, each with its own time (deliverAccess). A record each cost the collector about 4 µs
 * more per request (a third of its work: the record's own fields, checked and read for every request).
 */
import type { AccessRecord, TraceRecord } from "./record.ts";
import { capturedParts, printOnly } from "./capture.ts";
import type { Captured } from "./capture.ts";
import { COLLECTOR_TOKEN_VAR, COLLECTOR_URL_VAR } from "../../shared/names.ts";

export interface CollectorEnv {
  [COLLECTOR_URL_VAR]?: string | null;
  [COLLECTOR_TOKEN_VAR]?: string | null;
}

/** Where a batch goes; it must not throw (a lost batch is said on the console and forgotten). */
export type Transport = (batch: TraceRecord[]) => Promise<void>;

const FLUSH_AFTER_MS = 100;
/** Records and joined access records in a batch: one is sent at once when this many are waiting. */
const MAX_BATCH = 500;
/** A flusher that has not finished after this long is taken as lost (its invocation was cancelled). */
const FLUSH_LOST_MS = 5_000;

const buffer: TraceRecord[] = [];
/** What `buffer` holds, counting each access record joined to a shared one. */
let waiting = 0;
/** The shared record access records join while it is the buffer's last (so the records' order stays the requests'). */
let joinable: TraceRecord | undefined;
let flushSince = 0;

function take(): TraceRecord[] {
  waiting = 0;
  joinable = undefined;
  return buffer.splice(0);
}

/** Sends a batch straight to the collector's /ingest; undefined when no collector is configured. */
export function collectorTransport(env: CollectorEnv): Transport | undefined {
  const url = env[COLLECTOR_URL_VAR];
  if (!url) return undefined;
  return async (batch) => {
    if (batch.length === 0) return;
    try {
      const res = await fetch(`${url}/ingest`, {
        method: "POST",
        headers: { authorization: `Bearer ${env[COLLECTOR_TOKEN_VAR] ?? ""}`, "content-type": "application/json" },
        body: JSON.stringify(batch),
      });
      await res.body?.cancel();
    } catch (err) {
      // The collector is down (the supervisor restarts): these records are lost, the functions are not affected. Only
      // printed: kept, the line would make a record of its own to deliver (and, logged in the context of the request
      // that started this flush, one charged to that request's function).
      printOnly(`could not deliver ${batch.length} trace record(s) to the collector: ${(err as Error).message}`);
    }
  };
}

/**
 * Queues the access record of a request that logged nothing: it joins the shared record when that is the buffer's
 * last, else starts one. A record of its own is what `deliver` is for.
 */
export function deliverAccess(access: AccessRecord, send: Transport | undefined, ctx: Pick<ExecutionContext, "waitUntil">): void {
  if (!send) return;
  if (joinable !== undefined && buffer[buffer.length - 1] === joinable) {
    joinable.access.push(access);
    waiting++;
    flushWhenDue(send, ctx);
    return;
  }
  const shared: TraceRecord = { worker: "gateway", ts: access.ts ?? Date.now(), outcome: "ok", access: [access], logs: [], exceptions: [] };
  deliver([shared], send, ctx);
  joinable = shared;
}

/** What an invocation's records say of it besides what it captured. */
export interface Invocation {
  request?: NonNullable<TraceRecord["request"]>;
  cron?: string;
}

/** A record of an invocation of `worker`, with what `parts` gives. */
export const record = (worker: string, ts: number, outcome: string, of: Invocation, parts: Partial<TraceRecord>): TraceRecord => ({
  worker,
  ts,
  outcome,
  access: [],
  logs: [],
  exceptions: [],
  ...parts,
  ...(of.request ? { request: of.request } : {}),
  ...(of.cron !== undefined ? { cron: of.cron } : {}),
});

/**
 * Delivers what an invocation logs after its record (capture.ts `recordMade`), in records of their own with its
 * request (not its cron: a record with one counts a run).
 */
export const lateRecorder =
  (worker: string, of: Invocation, send: Transport, ctx: Pick<ExecutionContext, "waitUntil">) =>
  (after: Captured): void => {
    const late: Invocation = of.request ? { request: of.request } : {};
    deliver([record(worker, Date.now(), "ok", late, capturedParts(after))], send, ctx);
  };

/** Queues records for `send` (dropped when there is none); `ctx` is the calling invocation's. */
export function deliver(records: TraceRecord[], send: Transport | undefined, ctx: Pick<ExecutionContext, "waitUntil">): void {
  if (!send) return;
  for (const record of records) buffer.push(record);
  waiting += records.length;
  flushWhenDue(send, ctx);
}

/** Sends the buffer now when it is full, else makes sure a flush is pending. */
function flushWhenDue(send: Transport, ctx: Pick<ExecutionContext, "waitUntil">): void {
  if (waiting >= MAX_BATCH) {
    ctx.waitUntil(send(take()));
    return;
  }
  const now = Date.now();
  if (flushSince !== 0 && now - flushSince < FLUSH_LOST_MS) return;
  flushSince = now;
  ctx.waitUntil(
    new Promise((resolve) => setTimeout(resolve, FLUSH_AFTER_MS)).then(() => {
      flushSince = 0;
      return send(take());
    }),
  );
}
