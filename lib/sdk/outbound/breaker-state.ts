/**
 * An upstream's circuit breaker as one small record, and the changes made to it (trip, fail, succeed, probe, close). The same rules run in two
 * places: here, for a breaker an isolate keeps to itself (memory-store.ts), and as a Lua script in Redis for one
 * shared by every isolate, process and node that uses the same Redis (redis-store.ts); a unit test runs the same
 * cases against both.
 *
 *   closed ──trip──▶ open ──(wait over) probe──▶ half_open ──close──▶ closed
 *                      ▲                             │
 *                      └────────────trip─────────────┘   (each reopening doubles the wait)
 *
 * A consecutive-failures breaker counts in the record too (`fail` / `succeed`), so that failures seen by different
 * isolates add up; a success writes only when the count is not zero already.
 *
 * Only one probe runs at a time: `probe` hands out a lease; until it ends (the probe's close or trip, or its time
 * running out) every other caller is refused at once.
 */

import type { BreakerState } from "../../shared/outbound-event.ts";

export type { BreakerState };

export interface BreakerRecord {
  state: BreakerState;
  /** When the record entered its state (ms since the epoch). */
  since: number;
  /** While closed: failures in a row (of every isolate sharing the record), for a consecutive-failures breaker. */
  failures: number;
  /** Openings in a row without a close between them: the wait before a probe grows with it. */
  opens: number;
  /** While half_open: when the running probe's lease ends. */
  probeUntil: number;
  /** Counts changes, so a copy can tell it is out of date. */
  version: number;
}

export const CLOSED: BreakerRecord = { state: "closed", since: 0, failures: 0, opens: 0, probeUntil: 0, version: 0 };

/** How long the breaker stays open after its `opens`-th opening in a row: the first wait, doubled per reopening, capped. */
export function openWait(opens: number, firstMs: number, maxMs: number): number {
  return Math.min(firstMs * 2 ** Math.max(0, opens - 1), Math.max(firstMs, maxMs));
}

export interface Waits {
  firstMs: number;
  maxMs: number;
}

/** A change, and whether it changed the state. */
export interface Changed {
  record: BreakerRecord;
  changed: boolean;
}

/** Opens the breaker (from closed, or from half_open when the probe failed); an open one stays as it is. */
export function trip(r: BreakerRecord, now: number): Changed {
  if (r.state === "open") return { record: r, changed: false };
  const opens = r.state === "half_open" ? r.opens + 1 : 1;
  return { record: { state: "open", since: now, failures: 0, opens, probeUntil: 0, version: r.version + 1 }, changed: true };
}

/** Counts a failure of a closed breaker; the `threshold`-th in a row opens it. Open or half-open: nothing changes. */
export function fail(r: BreakerRecord, now: number, threshold: number): Changed {
  if (r.state !== "closed") return { record: r, changed: false };
  if (r.failures + 1 >= threshold) return trip(r, now);
  return { record: { ...r, failures: r.failures + 1 }, changed: false };
}

/** A success of a closed breaker: the count of failures in a row starts again. */
export function succeed(r: BreakerRecord): Changed {
  return { record: r.failures === 0 ? r : { ...r, failures: 0 }, changed: false };
}

/**
 * Asks to send the probe: granted when the open wait is over (the breaker turns half_open) or when the running
 * probe's lease has ended. A closed breaker needs no probe (granted, unchanged).
 */
export function probe(r: BreakerRecord, now: number, waits: Waits, leaseMs: number): Changed & { granted: boolean } {
  if (r.state === "closed") return { record: r, changed: false, granted: true };
  if (r.state === "open" && now < r.since + openWait(r.opens, waits.firstMs, waits.maxMs))
    return { record: r, changed: false, granted: false };
  if (r.state === "half_open" && now < r.probeUntil) return { record: r, changed: false, granted: false };
  const since = r.state === "open" ? now : r.since;
  return {
    record: { state: "half_open", since, failures: 0, opens: r.opens, probeUntil: now + leaseMs, version: r.version + 1 },
    changed: true,
    granted: true,
  };
}

/** Closes the breaker after a probe succeeded; otherwise nothing changes. */
export function close(r: BreakerRecord, now: number): Changed {
  if (r.state !== "half_open") return { record: r, changed: false };
  return { record: { state: "closed", since: now, failures: 0, opens: 0, probeUntil: 0, version: r.version + 1 }, changed: true };
}

/** How long until a caller refused now may try again (ms, at least 1 s). */
export function retryAfterMs(r: BreakerRecord, now: number, waits: Waits): number {
  const until = r.state === "open" ? r.since + openWait(r.opens, waits.firstMs, waits.maxMs) : r.probeUntil;
  return Math.max(1000, until - now);
}
