/**
 * The gateway's own trace: the gateway makes its record of each request in its isolate (capture.ts) and hands it to
 * sender.ts, which batches records to the collector. The record is the access record, and the console lines logged
 * while the request ran (the gateway's own and those of the functions in its isolate), kept apart per request. A
 * request that logged nothing only adds its access record to a record shared with others (sender.ts).
 */
import type { AccessRecord, TraceRecord } from "./record.ts";
import { capturedParts, capturing, emptyCapture, recordMade, takeBetween } from "./capture.ts";
import type { Captured } from "./capture.ts";
import { collectorTransport, deliver, deliverAccess } from "./sender.ts";
import type { CollectorEnv, Transport } from "./sender.ts";

const gatewayRecord = (ts: number, access: AccessRecord[], kept: Captured): TraceRecord => ({
  worker: "gateway",
  ts,
  outcome: "ok",
  access,
  exceptions: [],
  ...capturedParts(kept),
});

const isEmpty = (kept: Captured) => kept.logs.length === 0 && kept.outbound.length === 0 && kept.dbCache === undefined;

/**
 * Delivers what is logged after a request's record was made (work a function in this isolate handed to waitUntil)
 * in records of its own, with the request's id and as its function's (the gateway's when it named none).
 */
const lateRecorder =
  (access: AccessRecord, send: Transport, ctx: ExecutionContext) =>
  (after: Captured): void =>
    deliver(
      [
        {
          worker: access.fn ?? "gateway",
          ts: Date.now(),
          outcome: "ok",
          request: { id: access.id, method: access.method, url: `http://gateway${access.path}`, status: access.status },
          access: [],
          exceptions: [],
          ...capturedParts(after),
        },
      ],
      send,
      ctx,
    );

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
  const send = collectorTransport(env);
  if (!send) {
    try {
      return await work();
    } finally {
      done();
    }
  }
  const started = Date.now();
  const before = takeBetween();
  if (before) deliver([gatewayRecord(started, [], before)], send, ctx);
  const kept = emptyCapture();
  let response: Response | undefined;
  try {
    return (response = await capturing(kept, work));
  } finally {
    done();
    const access = record(response);
    if (isEmpty(kept)) deliverAccess(access, send, ctx);
    else deliver([gatewayRecord(started, [access], kept)], send, ctx);
    // What is logged from now on goes in records of its own (up to 100, for a minute: capture.ts).
    recordMade(kept, lateRecorder(access, send, ctx));
  }
}
