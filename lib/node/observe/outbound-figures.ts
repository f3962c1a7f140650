/**
 * The upstreams functions call through the SDK's outbound helper, from the events each try publishes
 * (lib/shared/outbound-event.ts): Prometheus counters of calls, tries by outcome, retries and fallbacks, try durations,
 * breaker changes, and each upstream's breaker state with the time in it; and the same figures for the dashboard.
 *
 * The state shown is the newest any isolate reported: every change of state sets the record's `since` later than the
 * one before (a new probe lease keeps it, and keeps the state), so the report with the latest `since` is the current state, whichever isolate or process sent it (an
 * isolate whose copy is a moment old reports an earlier `since`, and loses).
 */
import client from "prom-client";
import type { Gauge } from "prom-client";
import type { BreakerState, OutboundEvent, TryOutcome } from "../../shared/outbound-event.ts";
import { BREAKER_STATES } from "../../shared/outbound-event.ts";

interface Upstream {
  state: BreakerState;
  since: number;
  scope: "shared" | "isolate";
  functions: Set<string>;
  calls: number;
  outcomes: Partial<Record<TryOutcome, number>>;
  retries: number;
}

export interface UpstreamListing {
  upstream: string;
  functions: string[];
  state: BreakerState;
  /** When it entered its state (ms since the epoch; 0: closed since before anything was recorded). */
  since: number;
  scope: "shared" | "isolate";
  calls: number;
  ok: number;
  failures: number;
  timeouts: number;
  refused: number;
  busy: number;
  retries: number;
  fallbacks: number;
}

export class OutboundFigures {
  readonly #upstreams = new Map<string, Upstream>();
  readonly #calls: client.Counter;
  readonly #tries: client.Counter;
  readonly #retries: client.Counter;
  readonly #changes: client.Counter;
  readonly #duration: client.Histogram;

  constructor(registers: client.Registry[]) {
    const counter = (name: string, help: string, labelNames: string[]) => new client.Counter({ name, help, labelNames, registers });
    this.#calls = counter(
      "workyard_outbound_calls_total",
      "Calls through the outbound helper, by function and the upstream called first (a failover's tries count under its own upstream)",
      ["function", "upstream"],
    );
    this.#tries = counter(
      "workyard_outbound_tries_total",
      "Tries of outbound calls by outcome: ok, failed_status (5xx, 408, 429), error (no answer), timeout, refused (breaker open), busy (bulkhead full), fallback",
      ["function", "upstream", "outcome"],
    );
    this.#retries = counter("workyard_outbound_retries_total", "Tries after a call's first, by function and upstream", [
      "function",
      "upstream",
    ]);
    this.#changes = counter(
      "workyard_outbound_breaker_changes_total",
      "Breaker changes made by this node's isolates, by upstream and the state moved to",
      ["upstream", "to"],
    );
    this.#duration = new client.Histogram({
      name: "workyard_outbound_try_duration_seconds",
      help: "Time of each try that reached the upstream (ok, failed_status, error, timeout), by upstream",
      labelNames: ["upstream"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const upstreams = this.#upstreams;
    new client.Gauge({
      name: "workyard_outbound_breaker_state",
      help: "Each upstream's breaker: 1 for its current state (closed, open, half_open), 0 for the others",
      labelNames: ["upstream", "state"],
      registers,
      collect(this: Gauge) {
        this.reset();
        for (const [upstream, u] of upstreams) for (const state of BREAKER_STATES) this.set({ upstream, state }, u.state === state ? 1 : 0);
      },
    });
    new client.Gauge({
      name: "workyard_outbound_breaker_state_seconds",
      help: "How long each upstream's breaker has been in its current state (0 when closed since before anything was recorded)",
      labelNames: ["upstream"],
      registers,
      collect(this: Gauge) {
        this.reset();
        const now = Date.now();
        for (const [upstream, u] of upstreams) this.set({ upstream }, u.since === 0 ? 0 : Math.max(0, now - u.since) / 1000);
      },
    });
  }

  record(fn: string, e: OutboundEvent): void {
    let u = this.#upstreams.get(e.upstream);
    if (!u) {
      u = { state: e.state, since: e.since, scope: e.scope, functions: new Set(), calls: 0, outcomes: {}, retries: 0 };
      this.#upstreams.set(e.upstream, u);
    }
    u.functions.add(fn);
    if (e.since >= u.since) {
      u.state = e.state;
      u.since = e.since;
      u.scope = e.scope;
    }
    u.outcomes[e.outcome] = (u.outcomes[e.outcome] ?? 0) + 1;
    this.#tries.inc({ function: fn, upstream: e.upstream, outcome: e.outcome });
    if (e.attempt === 1) {
      u.calls++;
      this.#calls.inc({ function: fn, upstream: e.upstream });
    } else if (e.attempt > 1) {
      u.retries++;
      this.#retries.inc({ function: fn, upstream: e.upstream });
    }
    if (e.change) this.#changes.inc({ upstream: e.upstream, to: e.change });
    if (e.outcome === "ok" || e.outcome === "failed_status" || e.outcome === "error" || e.outcome === "timeout")
      this.#duration.observe({ upstream: e.upstream }, e.ms / 1000);
  }

  listing(): UpstreamListing[] {
    return [...this.#upstreams]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([upstream, u]) => ({
        upstream,
        functions: [...u.functions].sort(),
        state: u.state,
        since: u.since,
        scope: u.scope,
        calls: u.calls,
        ok: u.outcomes.ok ?? 0,
        failures: (u.outcomes.failed_status ?? 0) + (u.outcomes.error ?? 0),
        timeouts: u.outcomes.timeout ?? 0,
        refused: u.outcomes.refused ?? 0,
        busy: u.outcomes.busy ?? 0,
        retries: u.retries,
        fallbacks: u.outcomes.fallback ?? 0,
      }));
  }
}
