/**
 * A queue send that failed because the queue could not store the message (the database down, the queue service not
 * answering) is not the function's bug: it becomes a 503 with Retry-After, as a database outage does. workerd
 * rejects `send()` / `sendBatch()` with the service's CF-Queues-Error-Cause and code ("<cause> (503)"; older
 * versions said "Queue send failed: <status text>"), and the platform's causes for a send that was not stored start
 * with QUEUE_UNAVAILABLE (lib/node/queues/service.ts, lib/workers/queue-producer.ts); a refusal
 * of the message itself (too large, a bad delay) stays the function's error.
 */
import { ApiError } from "./errors.ts";

/** How the platform's reasons for an unstored send begin. */
export const QUEUE_UNAVAILABLE = "queue unavailable:";

const UNSTORED = new RegExp(`^(?:Queue (?:send|sendBatch) failed: )?${QUEUE_UNAVAILABLE}`);

/** The ApiError a failed queue send should become, or undefined when it is not one the queue caused. */
export function queueApiError(err: unknown): ApiError | undefined {
  if (!(err instanceof Error) || !UNSTORED.test(err.message)) return undefined;
  return new ApiError(503, "The queue could not store the message; try again shortly", {
    code: "queue_unavailable",
    headers: { "retry-after": "5" },
    cause: err,
  });
}
