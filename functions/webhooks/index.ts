/**
 * webhooks: delivers link events to the endpoint in WEBHOOK_URL.
 *   GET /                      where events go ({ queue, target }), null when WEBHOOK_URL is empty
 *   queue "link-events"        POSTs each event as JSON with `webhook-id` (the message id: the same on every retry,
 *                              so the receiver can drop duplicates; delivery is at least once), `webhook-timestamp`
 *                              and `webhook-attempt`. A 2xx answer acks the event; anything else, or no answer
 *                              within 10 s, retries it after 10 s, 20 s, 40 s ... (WEBHOOK_RETRY_BASE_SECONDS, at most
 *                              an hour); after its last retry it goes to the link-events-dead queue (wrangler.toml).
 */
import { z } from "zod";
import { createApp } from "#workyard/app";
import { defineEnv } from "#workyard/env";

/** What functions/links sends for each new link. */
export interface LinkEvent {
  type: "link.created";
  code: string;
  url: string;
  createdAt: string;
}

const env = defineEnv(
  z.object({
    WEBHOOK_URL: z.union([z.literal(""), z.url({ protocol: /^https?$/ })]).default(""),
    WEBHOOK_RETRY_BASE_SECONDS: z.coerce.number().int().min(0).max(3600).default(10),
  }),
);
const TIMEOUT_MS = 10_000;

/** Seconds before the next try: base, twice that, four times ... up to an hour. */
const backoff = (base: number, attempts: number) => Math.min(base * 2 ** (attempts - 1), 3600);

const app = createApp();
app.get("/", (c) => c.json({ queue: "link-events", target: env(c).WEBHOOK_URL || null }));

async function deliver(target: string, retryBase: number, message: Message<LinkEvent>): Promise<void> {
  try {
    const res = await fetch(target, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "webhook-id": message.id,
        "webhook-timestamp": String(Math.floor(message.timestamp.getTime() / 1000)),
        "webhook-attempt": String(message.attempts),
      },
      body: JSON.stringify(message.body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (res.ok) return message.ack();
    console.warn(`webhook ${message.id}: ${target} answered ${res.status}; retrying (attempt ${message.attempts})`);
  } catch (err) {
    console.warn(`webhook ${message.id}: ${target} failed (${(err as Error).message}); retrying (attempt ${message.attempts})`);
  }
  message.retry({ delaySeconds: backoff(retryBase, message.attempts) });
}

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<LinkEvent>, bindings: Record<string, unknown>): Promise<void> {
    const { WEBHOOK_URL: target, WEBHOOK_RETRY_BASE_SECONDS: retryBase } = env({ env: bindings });
    if (!target) {
      console.log(`${batch.messages.length} link event(s) not delivered: WEBHOOK_URL is empty (functions/webhooks/wrangler.toml)`);
      return batch.ackAll();
    }
    await Promise.all(batch.messages.map((m) => deliver(target, retryBase, m)));
  },
} satisfies ExportedHandler<Record<string, unknown>, LinkEvent>;
