/**
 * The dashboard's figures over time, in memory: per function, requests, 4xx and 5xx answers and a latency
 * histogram in 10-second buckets over the last hour. The request log and the metrics are the lasting record;
 * this is only what the dashboard's table and plots show, over the window the page asks for.
 */
import { z } from "zod";

export const BUCKET_MS = 10_000;
const MINUTE = 60_000;
/** How far back buckets are kept: the longest window, and one step more for its oldest partial step. */
const KEPT_MS = 61 * MINUTE;

/** The windows the page offers: from the first request kept ("auto"), or the last 5, 15 or 60 minutes. */
export const WINDOWS = { "5m": 5 * MINUTE, "15m": 15 * MINUTE, "60m": 60 * MINUTE } as const;
export const windowSchema = z.enum(["auto", "5m", "15m", "60m"], {
  error: "window must be auto (from the first request), 5m, 15m or 60m",
});
export type WindowChoice = z.infer<typeof windowSchema>;

/** The shortest window "auto" shows, so that a first request is not drawn across the whole width. */
const AUTO_MIN_MS = 2 * MINUTE;
/** Plot steps: the smallest that keeps a window within MAX_POINTS points. */
const STEPS_MS = [10_000, 20_000, 30_000, 60_000];
const MAX_POINTS = 120;

/**
 * Latency histogram bins, log-spaced: bin i holds durations up to 0.1 ms × 2^(i/4), so a percentile read from
 * it is within 19 % of the true one (and exact for a bucket with one value, being clamped to the min and max).
 */
const binOf = (ms: number) => (ms <= 0.1 ? 0 : Math.ceil(4 * Math.log2(ms / 0.1)));
const binTop = (i: number) => 0.1 * 2 ** (i / 4);

class Latencies {
  count = 0;
  min = Infinity;
  max = 0;
  readonly bins = new Map<number, number>();

  add(ms: number): void {
    this.count += 1;
    this.min = Math.min(this.min, ms);
    this.max = Math.max(this.max, ms);
    const i = binOf(ms);
    this.bins.set(i, (this.bins.get(i) ?? 0) + 1);
  }

  merge(other: Latencies): void {
    this.count += other.count;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
    for (const [i, n] of other.bins) this.bins.set(i, (this.bins.get(i) ?? 0) + n);
  }

  /** The q-quantile (0 < q ≤ 1), interpolated within its bin as Prometheus' histogram_quantile does; null when empty. */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = q * this.count;
    let seen = 0;
    for (const i of [...this.bins.keys()].sort((a, b) => a - b)) {
      const n = this.bins.get(i) ?? 0;
      if (seen + n >= rank) {
        const low = i === 0 ? 0 : binTop(i - 1);
        const value = low + (binTop(i) - low) * ((rank - seen) / n);
        return Math.min(this.max, Math.max(this.min, value));
      }
      seen += n;
    }
    return this.max;
  }
}

interface Bucket {
  requests: number;
  clientErrors: number;
  serverErrors: number;
  latency: Latencies;
}

const emptyBucket = (): Bucket => ({ requests: 0, clientErrors: 0, serverErrors: 0, latency: new Latencies() });

function mergeInto(into: Bucket, b: Bucket): void {
  into.requests += b.requests;
  into.clientErrors += b.clientErrors;
  into.serverErrors += b.serverErrors;
  into.latency.merge(b.latency);
}

/** One function's figures over the whole window. */
export interface FunctionSummary {
  name: string;
  requests: number;
  /** Requests over the window's length in seconds. */
  requestsPerSecond: number;
  clientErrors: number;
  serverErrors: number;
  /** 5xx answers over requests, 0 to 1 (0 with no requests). */
  errorRate: number;
  /** Latency percentiles and maximum, ms; null with no requests. */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

export interface SeriesData {
  /** Step start times, seconds since the epoch. */
  t: number[];
  /** Functions with requests in the window: per step, requests per second, % 5xx and p95 latency (null with no requests). */
  functions: Record<string, { rps: number[]; errorRate: (number | null)[]; p95Ms: (number | null)[] }>;
}

export interface WindowFigures {
  window: {
    choice: WindowChoice;
    /** What the plots' time axis spans, ms since the epoch: the first step's start to now. */
    from: number;
    to: number;
    stepMs: number;
    /** The first request kept (any function), ms since the epoch; null before any. */
    firstRequest: number | null;
  };
  functions: FunctionSummary[];
  series: SeriesData;
}

export class Series {
  /** function → bucket start (ms) → figures. */
  private readonly data = new Map<string, Map<number, Bucket>>();

  add(fn: string, at: number, status: number, ms: number): void {
    const start = Math.floor(at / BUCKET_MS) * BUCKET_MS;
    let buckets = this.data.get(fn);
    if (!buckets) this.data.set(fn, (buckets = new Map()));
    let b = buckets.get(start);
    if (!b) {
      buckets.set(start, (b = emptyBucket()));
      const oldest = start - KEPT_MS;
      for (const k of buckets.keys()) if (k < oldest) buckets.delete(k);
    }
    b.requests += 1;
    if (status >= 500) b.serverErrors += 1;
    else if (status >= 400) b.clientErrors += 1;
    b.latency.add(ms);
  }

  /** The start of the oldest kept bucket with a request, or null. */
  private firstRequest(now: number): number | null {
    let first: number | null = null;
    for (const buckets of this.data.values()) {
      for (const start of buckets.keys()) if (start >= now - KEPT_MS && (first === null || start < first)) first = start;
    }
    return first;
  }

  /**
   * The table's and the plots' figures over a window ending now: per function in `names` (and any other with
   * requests kept), its totals over the window; per step, its rate, error rate and p95 latency.
   */
  figures(names: string[], choice: WindowChoice = "auto", now = Date.now()): WindowFigures {
    const firstRequest = this.firstRequest(now);
    const span =
      choice === "auto" ? Math.min(WINDOWS["60m"], Math.max(AUTO_MIN_MS, firstRequest === null ? 0 : now - firstRequest)) : WINDOWS[choice];
    const stepMs = STEPS_MS.find((s) => span / s <= MAX_POINTS) ?? STEPS_MS[STEPS_MS.length - 1] ?? MINUTE;
    // Steps aligned to their length, the first one holding the window's start (so "auto" holds the first request).
    const from = Math.floor((now - span) / stepMs) * stepMs;
    const starts = Array.from({ length: Math.floor((now - from) / stepMs) + 1 }, (_, i) => from + i * stepMs);
    // The last step is still filling: its rate is over the part elapsed (at least a second, so one request
    // just after a step starts is not drawn as a burst).
    const stepSeconds = (s: number) => Math.max(1000, Math.min(stepMs, now - s)) / 1000;

    const summaries: FunctionSummary[] = [];
    const functions: SeriesData["functions"] = {};
    for (const name of [...new Set([...names, ...this.data.keys()])].sort()) {
      const kept = this.data.get(name) ?? new Map<number, Bucket>();
      const steps = starts.map(() => emptyBucket());
      const total = emptyBucket();
      for (const [start, b] of kept) {
        if (start < from) continue;
        const step = steps[Math.floor((start - from) / stepMs)];
        if (step) mergeInto(step, b);
        mergeInto(total, b);
      }
      if (!names.includes(name) && total.requests === 0) continue; // gone from the release, and quiet
      summaries.push({
        name,
        requests: total.requests,
        requestsPerSecond: total.requests / (Math.max(1000, now - from) / 1000),
        clientErrors: total.clientErrors,
        serverErrors: total.serverErrors,
        errorRate: total.requests > 0 ? total.serverErrors / total.requests : 0,
        p50Ms: total.latency.quantile(0.5),
        p95Ms: total.latency.quantile(0.95),
        p99Ms: total.latency.quantile(0.99),
        maxMs: total.requests > 0 ? total.latency.max : null,
      });
      if (total.requests === 0) continue;
      functions[name] = {
        rps: steps.map((b, i) => b.requests / stepSeconds(starts[i] ?? from)),
        errorRate: steps.map((b) => (b.requests > 0 ? (100 * b.serverErrors) / b.requests : null)),
        p95Ms: steps.map((b) => b.latency.quantile(0.95)),
      };
    }
    return {
      window: { choice, from, to: now, stepMs, firstRequest },
      functions: summaries,
      series: { t: starts.map((s) => s / 1000), functions },
    };
  }
}
