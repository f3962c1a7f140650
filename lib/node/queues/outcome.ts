/**
 * What a batch's outcome means for each of its messages, with Cloudflare's rules (Workers docs, "batching and
 * retries"): a per-message retry() or ack() beats retryAll()/ackAll(); a handler that throws retries every message
 * it did not ack; one that returns acks every message it did not retry. A message to retry that has used its
 * deliveries (attempts > max_retries) goes to the dead-letter queue, or is dropped when there is none.
 */
import type { QueueConsumer } from "../releases/manifest.ts";
import type { QueueOutcome } from "../../shared/names.ts";
import type { ClaimedMessage, Settlement } from "./store.ts";

export function settlement(messages: ClaimedMessage[], outcome: QueueOutcome, consumer: QueueConsumer): Settlement {
  const acks = new Set(outcome.explicitAcks);
  const retries = new Map(outcome.retryMessages.map((r) => [r.msgId, r]));
  const failed = outcome.outcome !== "ok";
  const s: Settlement = {
    acked: [],
    retried: [],
    dead: [],
    ...(consumer.deadLetterQueue ? { deadLetterQueue: consumer.deadLetterQueue } : {}),
  };
  for (const m of messages) {
    let delay: number | undefined;
    const retry = retries.get(m.id);
    if (retry) delay = retry.delaySeconds ?? consumer.retryDelay;
    else if (acks.has(m.id)) delay = undefined;
    else if (failed) delay = consumer.retryDelay;
    else if (outcome.retryBatch.retry) delay = outcome.retryBatch.delaySeconds ?? consumer.retryDelay;
    if (delay === undefined) s.acked.push(m.id);
    else if (m.attempts > consumer.maxRetries) s.dead.push(m.id);
    else s.retried.push({ id: m.id, delaySeconds: delay });
  }
  if (s.dead.length > 0) {
    s.reason = failed
      ? `queue() threw or did not finish (outcome "${outcome.outcome}") on its last delivery of ${consumer.maxRetries + 1}`
      : `retried on each of its ${consumer.maxRetries + 1} deliveries`;
  }
  return s;
}

/** Every message of a batch failed in the same way (the consumer not answering in time, workerd dying under it). */
export function failedBatch(messages: ClaimedMessage[], consumer: QueueConsumer, reason: string): Settlement {
  const s = settlement(
    messages,
    { outcome: "exception", ackAll: false, retryBatch: { retry: false }, explicitAcks: [], retryMessages: [] },
    consumer,
  );
  return s.dead.length > 0 ? { ...s, reason: `${reason} on its last delivery of ${consumer.maxRetries + 1}` } : s;
}
