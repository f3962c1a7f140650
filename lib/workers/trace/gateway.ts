/**
 * The gateway's own trace: the gateway makes its record of each request in its isolate (capture.ts) and hands it to
 * sender.ts, which batches records to the collector. The record is the access record, and the console lines logged
 * while the request ran (the gateway's own and those of the functions in its isolate), kept apart per request. A
 * request that logged nothing only adds its access record to a record shared with others (sender.ts).
 */
import type { AccessRecord, TraceRecord } from "./record.ts";
import { capturedNothing, capturedParts, capturing, emptyCapture, errorInto, recordMade, takeBetween } from "./capture.ts";
import type { Captured } from "./capture.ts";
import { collectorTransport, deliver, deliverAccess, lateRecorder } from "./sender.ts";
import type { CollectorEnv } from "./sender.ts";

const gatewayRecord = (ts: number, access: AccessRecord[], kept: Captured): TraceRecord => ({
  worker: "gateway",
  ts,
  outcome: "ok",
  access,
  exceptions: [],
  ...capturedParts(kept),
});

/** How the gateway logs an error about a request: into the request's record. */
export type ErrorLog = (...args: unknown[]) => void;

/**
 * Runs one request's work, then `done`, then `record` gives its access record; the trace goes to the collector.
 * Without a collector configured, it only runs the work and `done`. When function code runs in this isolate for it
 * (`codeHere`), the work runs in a context of its own (AsyncLocalStorage), where whatever is logged or published is
 * the request's; otherwise only the gateway's own lines are (through `log`), and the context is not paid for (about
 * 5 µs of a 75 µs static asset answer).
 */
export async function traced(
  env: CollectorEnv,
  ctx: ExecutionContext,
  codeHere: boolean,
  work: (log: ErrorLog) => Promise<Response>,
  done: () => void,
  record: (response: Response | undefined) => AccessRecord,
): Promise<Response> {
  const send = collectorTransport(env);
  if (!send) {
    try {
      return await work(console.error);
    } finally {
      done();
    }
  }
  const started = Date.now();
  const before = takeBetween();
  if (before) deliver([gatewayRecord(started, [], before)], send, ctx);
  const kept = emptyCapture();
  const log: ErrorLog = (...args) => errorInto(kept, ...args);
  let response: Response | undefined;
  try {
    return (response = await (codeHere ? capturing(kept, () => work(log)) : work(log)));
  } finally {
    done();
    const access = record(response);
    if (capturedNothing(kept)) deliverAccess(access, send, ctx);
    else deliver([gatewayRecord(started, [access], kept)], send, ctx);
    // What function code in this isolate logs from now on goes in records of its own, with the request's id and as
    // its function's (up to 100, for a minute: capture.ts). Without such code nothing reaches `kept` after this.
    if (codeHere) {
      const request = { id: access.id, method: access.method, url: `http://gateway${access.path}`, status: access.status };
      recordMade(kept, lateRecorder(access.fn ?? "gateway", { request }, send, ctx));
    }
  }
}
