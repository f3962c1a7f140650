/**
 * One upstream's circuit breaker as an isolate uses it. The state (closed, open, half_open with one probe) lives in the
 * store, shared through Redis when the function has it, so that once the upstream is seen to fail the breaker opens for
 * every isolate and process. A consecutive-failures breaker counts in the store too, so failures seen by different
 * processes add up; a sampling breaker (cockatiel's SamplingBreaker) judges the failure ratio of this isolate's own
 * calls, and opens the shared state when it trips.
 *
 * Each isolate keeps a copy of the shared record and reads it again when it is older than sync_ms. Redis is asked
 * only when something happens: a failure (counted), the first success after failures (the count reset), a probe, an
 * opening or closing. A call through a closed breaker with a fresh copy and no failures pending costs no Redis
 * request, nor does a refused call (it is answered from the copy).
 *
 * When Redis does not answer, the isolate carries on with its own record (memory-store.ts) until Redis answers again:
 * the breaker still works, only no longer shared.
 */
import { SamplingBreaker } from "cockatiel";
import type { IBreaker } from "cockatiel";
import type { UpstreamPolicy } from "../../shared/upstream-policy.ts";
import { CLOSED, openWait, retryAfterMs } from "./breaker-state.ts";
import type { BreakerRecord, Changed, Waits } from "./breaker-state.ts";
import { logChange } from "./report.ts";
import type { BreakerStore } from "./store.ts";

/** What a try may do: go (as the probe, or through a closed breaker), or not (and when to come back). */
export type Admission = { go: true; probe: boolean } | { go: false; retryAfterMs: number };

/** cockatiel's breakers take the circuit's state; this one only ever asks them about a closed circuit. */
const CLOSED_CIRCUIT = 0;

/** How long a shared store may take to answer before the isolate decides alone. */
export const STORE_TIMEOUT_MS = 500;

/** A sampling breaker's judge of this isolate's calls. */
const sampler = (policy: UpstreamPolicy): IBreaker | undefined =>
  policy.breaker === "sampling"
    ? new SamplingBreaker({
        threshold: policy.failure_ratio,
        duration: policy.window_ms,
        minimumRps: policy.min_calls / (policy.window_ms / 1000),
      })
    : undefined;

export class Breaker {
  readonly name: string;
  readonly #policy: UpstreamPolicy;
  readonly #shared: BreakerStore | null;
  readonly #local: BreakerStore;
  readonly #waits: Waits;
  #sampler: IBreaker | undefined;
  #view: BreakerRecord = CLOSED;
  #viewAt = Number.NEGATIVE_INFINITY;
  /** Which store the copy came from (versions of the two are unrelated). */
  #viewScope: "shared" | "isolate" = "isolate";
  /** When the read of the shared record now under way started. */
  #readingSince = Number.NEGATIVE_INFINITY;
  /** While the shared store is not answering: when to ask it again. */
  #sharedDownUntil = 0;

  constructor(name: string, policy: UpstreamPolicy, local: BreakerStore, shared: BreakerStore | null) {
    this.name = name;
    this.#policy = policy;
    this.#local = local;
    this.#shared = policy.shared ? shared : null;
    this.#waits = { firstMs: policy.half_open_after_ms, maxMs: policy.max_half_open_after_ms };
    this.#sampler = sampler(policy);
  }

  /** The record as this isolate last saw it. */
  get view(): BreakerRecord {
    return this.#view;
  }

  /** "shared" while the record is read from and written to Redis. */
  scope(now = Date.now()): "shared" | "isolate" {
    return this.#shared && now >= this.#sharedDownUntil ? "shared" : "isolate";
  }

  /** Runs one store operation on the shared store, or on the local one while the shared one is not answering. */
  async #store<T extends { record: BreakerRecord } | BreakerRecord>(now: number, op: (s: BreakerStore) => Promise<T>): Promise<T> {
    if (this.#shared && now >= this.#sharedDownUntil) {
      try {
        const result = await op(this.#shared);
        if (this.#sharedDownUntil !== 0) {
          this.#sharedDownUntil = 0;
          console.log(`outbound: upstream "${this.name}": the shared breaker state (Redis) answers again`);
        }
        return result;
      } catch (err) {
        if (this.#sharedDownUntil === 0)
          console.warn(
            `outbound: upstream "${this.name}": the shared breaker state (Redis) did not answer (${(err as Error).message}); ` +
              "this isolate keeps its own until it does",
          );
        this.#sharedDownUntil = now + Math.max(this.#policy.sync_ms, 1000);
      }
    }
    return op(this.#local);
  }

  #see(record: BreakerRecord, now: number, scope = this.scope(now)): void {
    // A slow answer about an older record of the same store (a read sent before a change this isolate has seen since)
    // does not undo that change; past sync_ms it is taken as it is (a record that expired starts its versions again).
    if (scope === this.#viewScope && record.version < this.#view.version && now - this.#viewAt < this.#policy.sync_ms) return;
    this.#viewScope = scope;
    // A breaker seen to close (here or elsewhere) starts counting afresh: failures from before it opened must not open it again.
    if (record.state === "closed" && this.#view.state !== "closed") this.#sampler = sampler(this.#policy);
    this.#view = record;
    this.#viewAt = now;
  }

  /**
   * The record, never older than sync_ms (the local store is always current). Under load the copy is read again
   * ahead of time, by one call at a time, once it is half that old, while the others go by the copy; so the calls do
   * not each read it when it turns stale (they do not wait for that one read: a promise of another request's I/O is
   * not theirs to await in workerd). A copy older than sync_ms is read by every call that finds it so. A read whose
   * request was cancelled frees the turn after twice the store's timeout.
   */
  async #current(now: number): Promise<BreakerRecord> {
    if (this.scope(now) === "isolate") {
      this.#see(await this.#local.read(this.name), now);
      return this.#view;
    }
    const age = now - this.#viewAt;
    if (age < this.#policy.sync_ms / 2) return this.#view;
    if (age < this.#policy.sync_ms && now - this.#readingSince < 2 * STORE_TIMEOUT_MS) return this.#view;
    this.#readingSince = now;
    try {
      this.#see(await this.#store(now, (s) => s.read(this.name)), now);
    } finally {
      this.#readingSince = Number.NEGATIVE_INFINITY;
    }
    return this.#view;
  }

  /** Whether a try may go now. */
  async admit(): Promise<Admission> {
    if (this.#policy.breaker === "off") return { go: true, probe: false };
    const now = Date.now();
    const r = await this.#current(now);
    if (r.state === "closed") return { go: true, probe: false };
    const due = r.state === "open" ? r.since + openWait(r.opens, this.#waits.firstMs, this.#waits.maxMs) : r.probeUntil;
    if (now < due) return { go: false, retryAfterMs: retryAfterMs(r, now, this.#waits) };
    const leaseMs = this.#policy.timeout_ms + 1000;
    const asked = await this.#store(now, (s) => s.probe(this.name, now, this.#waits, leaseMs));
    this.#see(asked.record, now);
    if (!asked.granted) return { go: false, retryAfterMs: retryAfterMs(asked.record, now, this.#waits) };
    if (asked.changed && asked.record.state === "half_open" && r.state === "open")
      logChange(this.name, "half_open", `open for ${Math.round((now - r.since) / 1000)} s`);
    return { go: true, probe: asked.record.state === "half_open" };
  }

  /** Records a try that succeeded; returns the change it made, if any. */
  async succeeded(admission: { probe: boolean }): Promise<Changed | undefined> {
    if (this.#policy.breaker === "off") return undefined;
    this.#sampler?.success(CLOSED_CIRCUIT);
    const now = Date.now();
    if (admission.probe) {
      const closed = await this.#store(now, (s) => s.close(this.name, now));
      this.#see(closed.record, now);
      if (closed.changed) logChange(this.name, "closed", "the probe succeeded");
      return closed;
    }
    if (this.#view.failures > 0) this.#see((await this.#store(now, (s) => s.succeed(this.name))).record, now);
    return undefined;
  }

  /** Records a try that failed (`detail` says how); returns the change it made, if any. */
  async failed(admission: { probe: boolean }, detail: string): Promise<Changed | undefined> {
    if (this.#policy.breaker === "off") return undefined;
    const now = Date.now();
    const policy = this.#policy;
    let result: Changed | undefined;
    if (admission.probe) result = await this.#store(now, (s) => s.trip(this.name, now));
    else if (policy.breaker === "consecutive") result = await this.#store(now, (s) => s.fail(this.name, now, policy.failures));
    // Opened only from closed (a fail whose threshold is this one): a call let through before another isolate's probe
    // started must not reopen the breaker under that probe.
    else if (this.#sampler?.failure(CLOSED_CIRCUIT)) result = await this.#store(now, (s) => s.fail(this.name, now, 1));
    if (!result) return undefined;
    this.#see(result.record, now);
    if (result.changed) {
      this.#sampler = sampler(policy);
      const why = admission.probe
        ? `the probe failed: ${detail}`
        : policy.breaker === "consecutive"
          ? `${policy.failures} failures in a row, the last: ${detail}`
          : `over ${Math.round(policy.failure_ratio * 100)}% of calls failed in ${policy.window_ms / 1000} s, the last: ${detail}`;
      logChange(this.name, "open", why, openWait(result.record.opens, this.#waits.firstMs, this.#waits.maxMs));
    }
    return result;
  }
}
