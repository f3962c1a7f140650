/**
 * The gateway's own trace: the gateway makes its record of each request in its isolate (capture.ts) and hands it to
 * sender.ts, which batches records to the collector. The record is the access record, and the console lines logged
 * while the request ran (the gateway's own and those of the functions in its isolate), kept apart per request.
 */
import type { AccessRecord, TraceRecord } from "./record.ts";
import { capturedParts, capturing, emptyCapture, takeBetween } from "./capture.ts";
import type { Captured } from "./capture.ts";
import { collectorTransport, deliver } from "./sender.ts";
import type { CollectorEnv } from "./sender.ts";

const gatewayRecord = (ts: number, access: AccessRecord[], kept: Captured): TraceRecord => ({
  worker: "gateway",
  ts,
  outcome: "ok",
  access,
  exceptions: [],
  ...capturedParts(kept),
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
    // The record holds the capture itself: lines logged after the answer still join it until its batch is sent.
    deliver([gatewayRecord(started, [record(response)], kept)], send, ctx);
  }
}
