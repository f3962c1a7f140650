/**
 * What the SDK's outbound helper publishes for each try, on the `workyard.outbound` diagnostics channel: the record the
 * worker makes of the invocation (lib/workers/trace/capture.ts) carries them, and the collector keeps /metrics and the dashboard's Upstreams panel from them.
 */

export const OUTBOUND_CHANNEL = "workyard.outbound";

/** How one try ended ("fallback": the call's fallback gave the answer after every try failed). */
export const TRY_OUTCOMES = ["ok", "failed_status", "error", "timeout", "refused", "busy", "fallback"] as const;
export type TryOutcome = (typeof TRY_OUTCOMES)[number];

export const BREAKER_STATES = ["closed", "open", "half_open"] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export interface OutboundEvent {
  upstream: string;
  /** 1 for the first try of a call, 2 for its first retry ...; 0 for a fallback. */
  attempt: number;
  outcome: TryOutcome;
  /** The upstream's status, when it answered with a Response. */
  status?: number;
  ms: number;
  /** The breaker as this isolate sees it after the try, since when (ms since the epoch), and where it is kept. */
  state: BreakerState;
  since: number;
  scope: "shared" | "isolate";
  /** Set when this try changed the breaker: the state it moved it to. */
  change?: BreakerState;
}
