/**
 * A batch's outcome per message, with Cloudflare's rules (lib/node/queues/outcome.ts), and which failed sends a
 * function answers 503 for (lib/sdk/queue-errors.ts).
 */
import { describe, expect, it } from "vitest";
import { failedBatch, settlement } from "../../lib/node/queues/outcome.ts";
import type { QueueConsumer } from "../../lib/node/releases/manifest.ts";
import type { ClaimedMessage } from "../../lib/node/queues/store.ts";
import { queueApiError } from "../../lib/sdk/queue-errors.ts";

const consumer: QueueConsumer = {
  queue: "q",
  maxBatchSize: 10,
  maxBatchTimeoutMs: 0,
  maxRetries: 3,
  retryDelay: 7,
  maxConcurrency: 1,
  timeoutMs: 1000,
  deadLetterQueue: "q-dead",
};
const msg = (id: string, attempts = 1): ClaimedMessage => ({ id, attempts, body: Buffer.from("{}"), contentType: "json", timestamp: 0 });
const ok = {
  outcome: "ok",
  ackAll: false,
  retryBatch: { retry: false },
  explicitAcks: [] as string[],
  retryMessages: [] as { msgId: string; delaySeconds?: number }[],
};

describe("a batch's outcome", () => {
  it("acks every message of a handler that returned, except those it retried (with their own delay or retry_delay)", () => {
    const s = settlement(
      [msg("a"), msg("b"), msg("c")],
      { ...ok, retryMessages: [{ msgId: "b", delaySeconds: 30 }, { msgId: "c" }] },
      consumer,
    );
    expect(s).toMatchObject({
      acked: ["a"],
      retried: [
        { id: "b", delaySeconds: 30 },
        { id: "c", delaySeconds: 7 },
      ],
      dead: [],
    });
  });

  it("retries every message a throwing handler did not ack", () => {
    const s = settlement([msg("a"), msg("b")], { ...ok, outcome: "exception", explicitAcks: ["a"] }, consumer);
    expect(s).toMatchObject({ acked: ["a"], retried: [{ id: "b", delaySeconds: 7 }], dead: [] });
  });

  it("lets a per-message ack beat retryAll, whose delay applies to the rest", () => {
    const s = settlement([msg("a"), msg("b")], { ...ok, retryBatch: { retry: true, delaySeconds: 60 }, explicitAcks: ["a"] }, consumer);
    expect(s).toMatchObject({ acked: ["a"], retried: [{ id: "b", delaySeconds: 60 }] });
  });

  it("sends a message to the dead-letter queue when its last delivery (max_retries + 1) failed, or drops it without one", () => {
    const failed = { ...ok, outcome: "exception" };
    expect(settlement([msg("a", 3), msg("b", 4)], failed, consumer)).toMatchObject({
      retried: [{ id: "a" }],
      dead: ["b"],
      deadLetterQueue: "q-dead",
      reason: expect.stringContaining("of 4"),
    });
    const { deadLetterQueue: _, ...noDlq } = consumer;
    expect(settlement([msg("b", 4)], failed, noDlq)).toMatchObject({ dead: ["b"] });
    expect(settlement([msg("b", 4)], failed, noDlq).deadLetterQueue).toBeUndefined();
  });

  it("treats a batch that never answered as a throw", () => {
    expect(failedBatch([msg("a", 1), msg("b", 4)], consumer, "queue() did not finish")).toMatchObject({
      retried: [{ id: "a" }],
      dead: ["b"],
      reason: "queue() did not finish on its last delivery of 4",
    });
  });
});

describe("a failed send in a function", () => {
  it("is a 503 when the queue could not store it, and the function's own error otherwise", () => {
    const unstored = queueApiError(new Error("queue unavailable: the queue store (PostgreSQL) did not take the message (...) (503)"));
    expect(unstored).toMatchObject({ status: 503, code: "queue_unavailable", headers: { "retry-after": "5" } });
    expect(queueApiError(new Error("Queue send failed: queue unavailable: the queue service did not answer"))?.status).toBe(503);
    expect(queueApiError(new Error("a message of 131073 bytes is over the limit of 131072 bytes (128 KB) (413)"))).toBeUndefined();
    expect(queueApiError(new Error("queue unavailable is not at the start"))).toBeUndefined();
  });
});
