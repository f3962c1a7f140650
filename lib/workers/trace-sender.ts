/**
 * Delivering trace records to the supervisor's collector on loopback, in batches: used by the tail worker
 * (functions' traces) and by the gateway (its own records, made in its isolate: see gateway-trace.ts).
 *
 * Records go into a buffer shared by all invocations of the isolate; the first invocation that finds no flush
 * pending keeps itself alive (waitUntil) for FLUSH_AFTER_MS and then sends everything gathered by then. Only
 * plain data crosses invocations, never an I/O object.
 */
import type { TraceRecord } from "./trace-record.ts";
import { COLLECTOR_TOKEN_VAR, COLLECTOR_URL_VAR } from "../shared/names.ts";

export interface CollectorEnv {
  [COLLECTOR_URL_VAR]?: string | null;
  [COLLECTOR_TOKEN_VAR]?: string | null;
}

const FLUSH_AFTER_MS = 100;
const MAX_BATCH = 500;
/** A flusher that has not finished after this long is taken as lost (its invocation was cancelled). */
const FLUSH_LOST_MS = 5_000;

const buffer: TraceRecord[] = [];
let flushSince = 0;

async function send(env: CollectorEnv, batch: TraceRecord[]): Promise<void> {
  if (batch.length === 0 || !env[COLLECTOR_URL_VAR]) return;
  try {
    const res = await fetch(`${env[COLLECTOR_URL_VAR]}/ingest`, {
      method: "POST",
      headers: { authorization: `Bearer ${env[COLLECTOR_TOKEN_VAR] ?? ""}`, "content-type": "application/json" },
      body: JSON.stringify(batch),
    });
    await res.body?.cancel();
  } catch (err) {
    // The collector is down (the supervisor restarts): these records are lost, the functions are not affected.
    console.error(`could not deliver ${batch.length} trace record(s) to the collector: ${(err as Error).message}`);
  }
}

/** Queues records for the collector (dropped when none is configured); `ctx` is the calling invocation's. */
export function deliver(records: TraceRecord[], env: CollectorEnv, ctx: Pick<ExecutionContext, "waitUntil">): void {
  if (!env[COLLECTOR_URL_VAR]) return;
  for (const record of records) buffer.push(record);
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
}
