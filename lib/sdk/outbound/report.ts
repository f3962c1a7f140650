/**
 * What the outbound helper tells the platform: one event per try on the `workyard.outbound` diagnostics channel (the
 * record each worker makes of the invocation passes them to the collector, which keeps /metrics and the dashboard's Upstreams
 * panel), and a log line for each breaker change this isolate makes. On Cloudflare the same events reach a Tail
 * Worker; on Deno nobody listens and publishing costs next to nothing.
 */
import { channel } from "node:diagnostics_channel";
import { OUTBOUND_CHANNEL } from "../../shared/outbound-event.ts";
import type { BreakerState, OutboundEvent } from "../../shared/outbound-event.ts";

const outboundChannel = channel(OUTBOUND_CHANNEL);

export function publish(event: OutboundEvent): void {
  outboundChannel.publish(event);
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/** The log line for a change this isolate made to the breaker (`waitMs`: how long an opened one stays open). */
export function logChange(upstream: string, to: BreakerState, detail: string, waitMs = 0): void {
  const name = `outbound: upstream "${upstream}"`;
  if (to === "open")
    console.warn(`${name}: breaker open (${detail}); calls fail at once for ${seconds(waitMs)}, then one probe goes through`);
  else if (to === "half_open") console.log(`${name}: breaker half-open (${detail}); one probe goes through`);
  else console.log(`${name}: breaker closed (${detail})`);
}
