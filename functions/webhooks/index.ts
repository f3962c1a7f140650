/**
 * webhooks: delivers link events to the endpoint in WEBHOOK_URL.
 *   GET /                      where events go ({ queue, target }), null when WEBHOOK_URL is empty
 *   queue "link-events"        POSTs each event as JSON with `webhook-id` (the message id: the same on every retry,
 *                              so the receiver can drop duplicates; delivery is at least once), `webhook-timestamp`
 *                              and `webhook-attempt`. A 2xx answer acks the event; anything else, or no answer
 *                              within 10 s, retries it after 10 s, 20 s, 40 s ... (WEBHOOK_RETRY_BASE_SECONDS, at most
 *                              an hour); after its last retry it goes to the link-events-dead queue (wrangler.toml).
 *
 * Calls go through the outbound helper as the upstream "webhook": its circuit breaker ([workyard.upstreams.webhook]
 * in wrangler.toml) stops deliveries to an endpoint that keeps failing, so that a backlog waits in the queue instead
 * of hammering it; one probe goes through now and then, and when it succeeds the backlog drains. Events refused by the
 * open breaker are retried when it may let calls through again (or after their own backoff, if later).
 */
import { createApp } from "#workyard/app";
import { defineEnv } from "#workyard/env";
import { createRoute, jsonResponse, z } from "#workyard/openapi";
import { defineUpstreams, outbound, UpstreamError } from "#workyard/outbound";

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
// The queue retries (durably, with its own backoff), so the helper does not; the breaker's settings are in wrangler.toml.
defineUpstreams({ webhook: { timeout_ms: 10_000, retries: 0 } });

/** Deliveries of one batch in flight at once: a failing endpoint opens the breaker before the next ones go. */
const IN_FLIGHT = 4;

/** Seconds before the next try: base, twice that, four times ... up to an hour. */
const backoff = (base: number, attempts: number) => Math.min(base * 2 ** (attempts - 1), 3600);

// Its work is the queue consumer below; over HTTP it only says where events go.
const app = createApp({
  api: { title: "webhooks", description: "Delivers link events (link.created) from the link-events queue to the WEBHOOK_URL endpoint." },
});
app.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["webhooks"],
    summary: "Where events go",
    responses: {
      200: jsonResponse(
        z.object({
          queue: z.literal("link-events"),
          target: z
            .string()
            .nullable()
            .openapi({ description: "WEBHOOK_URL; null when it is empty (events are acknowledged, not delivered)" }),
        }),
        "The queue consumed and the endpoint events are delivered to",
        { queue: "link-events", target: "https://hooks.example.com/workyard" },
      ),
    },
  }),
  (c) => c.json({ queue: "link-events" as const, target: env(c).WEBHOOK_URL || null }, 200),
);

/** Delivers one event; false when the breaker refused it (the endpoint is known to be down). */
async function deliver(
  bindings: Record<string, unknown>,
  target: string,
  retryBase: number,
  message: Message<LinkEvent>,
): Promise<boolean> {
  const later = (seconds: number) => message.retry({ delaySeconds: Math.max(backoff(retryBase, message.attempts), seconds) });
  try {
    const res = await outbound(
      { env: bindings },
      "webhook",
      (signal, upstream) =>
        upstream.fetch(target, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": String(Math.floor(message.timestamp.getTime() / 1000)),
            "webhook-attempt": String(message.attempts),
          },
          body: JSON.stringify(message.body),
          signal,
        }),
      // The receiver drops duplicates by webhook-id.
      { idempotent: true },
    );
    await res.body?.cancel();
    if (res.ok) {
      message.ack();
      return true;
    }
    console.warn(`webhook ${message.id}: ${target} answered ${res.status}; retrying (attempt ${message.attempts})`);
  } catch (err) {
    if (err instanceof UpstreamError && err.kind === "open") {
      later(Math.ceil((err.retryAfterMs ?? 0) / 1000));
      return false;
    }
    console.warn(`webhook ${message.id}: ${target} failed (${(err as Error).message}); retrying (attempt ${message.attempts})`);
  }
  later(0);
  return true;
}

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<LinkEvent>, bindings: Record<string, unknown>): Promise<void> {
    const { WEBHOOK_URL: target, WEBHOOK_RETRY_BASE_SECONDS: retryBase } = env({ env: bindings });
    if (!target) {
      console.log(`${batch.messages.length} link event(s) not delivered: WEBHOOK_URL is empty (functions/webhooks/wrangler.toml)`);
      return batch.ackAll();
    }
    const messages = [...batch.messages];
    let refused = 0;
    while (messages.length > 0) {
      const group = messages.splice(0, IN_FLIGHT);
      const delivered = await Promise.all(group.map((m) => deliver(bindings, target, retryBase, m)));
      refused += delivered.filter((d) => !d).length;
    }
    if (refused > 0) console.log(`${refused} link event(s) wait: the breaker of ${target} is open (it has been failing)`);
  },
} satisfies ExportedHandler<Record<string, unknown>, LinkEvent>;
