/**
 * What the collector receives for one invocation, as the worker that ran it made it in its isolate (capture.ts): the
 * gateway's record of a request, a function's of a request, cron run or queue delivery (and, from releases built
 * before, a tail worker's, from workerd's TraceItem). Small and JSON-safe. Shared by those that build them and the
 * collector (which validates them with schema.ts).
 */

import type { DbCacheCounts } from "../../shared/db-cache-event.ts";
import type { OutboundEvent } from "../../shared/outbound-event.ts";

/** The gateway's record of one request. */
export interface AccessRecord {
  /** Request id (x-request-id). */
  id: string;
  /** The routed function, or null when the path named none. */
  fn: string | null;
  method: string;
  path: string;
  status: number;
  /** Milliseconds until the response headers (workerd's clock advances across I/O only). */
  ms: number;
  ip: string;
  /** Requests in flight for `fn` in this workerd process when this one started (itself included). */
  inflight: number;
  /** A random id of the workerd process (isolate) that served it: in-flight samples are summed across them. */
  proc: string;
  /**
   * When the request started (ms since the epoch). Requests that logged nothing share one record (sender.ts), whose
   * own `ts` is the first one's; absent from releases built before, where the record's `ts` is the request's.
   */
  ts?: number;
}

const MAX_LOG_CHARS = 8_192;

/** How an invocation ended, as workerd names it (a trace item's `outcome`); anything else is counted as "unknown". */
export const OUTCOMES = [
  "ok",
  "exception",
  "canceled",
  "exceededCpu",
  "exceededMemory",
  "responseStreamDisconnected",
  "scriptNotFound",
  "killSwitch",
  "daemonDown",
  "loadShed",
  "unknown",
] as const;

/** `outcome` as a metric label: one of OUTCOMES (a label's values must stay few). */
export const outcomeLabel = (outcome: string): string => ((OUTCOMES as readonly string[]).includes(outcome) ? outcome : "unknown");

/** A console argument, bounded: strings as they are, anything else as it serializes to JSON. */
export function boundedLogValue(value: unknown): unknown {
  if (typeof value === "string") return value.length > MAX_LOG_CHARS ? `${value.slice(0, MAX_LOG_CHARS)}…` : value;
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > MAX_LOG_CHARS ? `${text.slice(0, MAX_LOG_CHARS)}…` : value;
}

export interface TraceRecord {
  /** Which worker it is from: a function's name, or "gateway" (which includes the functions in its isolate). */
  worker: string;
  /** When the invocation started (ms since the epoch). */
  ts: number;
  outcome: string;
  /** For a fetch: the request id the gateway set, and the response status (absent when it threw). */
  request?: { id: string | null; method: string; url: string; status: number | null };
  /** For a scheduled() run. */
  cron?: string;
  access: AccessRecord[];
  logs: { ts: number; level: string; message: unknown[] }[];
  exceptions: { ts: number; name: string; message: string; stack: string }[];
  /** The outbound helper's events (lib/shared/outbound-event.ts), when the invocation called upstreams. */
  outbound?: OutboundEvent[];
  /** The read cache's events in the invocation, counted (lib/shared/db-cache-event.ts). */
  dbCache?: DbCacheCounts;
}
