/**
 * The dashboard's figures over time, in memory: per function, requests, 5xx answers and latency in
 * 10-second buckets over the last 30 minutes. The request log and the metrics are the lasting record;
 * this is only what the plots draw.
 */
export const BUCKET_MS = 10_000;
const BUCKETS = 180;

interface Bucket {
  requests: number;
  errors: number;
  msSum: number;
  msMax: number;
}

export interface FunctionSummary {
  name: string;
  /** Over the last minute. */
  requestsPerSecond: number;
  errorRate: number;
  avgMs: number;
  maxMs: number;
  total: number;
}

export interface SeriesData {
  /** Bucket start times, seconds since the epoch. */
  t: number[];
  functions: Record<string, { rps: (number | null)[]; errorRate: (number | null)[]; avgMs: (number | null)[] }>;
}

export class Series {
  /** function → bucket start (ms) → figures. */
  private readonly data = new Map<string, Map<number, Bucket>>();
  private readonly totals = new Map<string, number>();

  add(fn: string, at: number, status: number, ms: number): void {
    const start = Math.floor(at / BUCKET_MS) * BUCKET_MS;
    let buckets = this.data.get(fn);
    if (!buckets) this.data.set(fn, (buckets = new Map()));
    let b = buckets.get(start);
    if (!b) {
      buckets.set(start, (b = { requests: 0, errors: 0, msSum: 0, msMax: 0 }));
      const oldest = start - BUCKETS * BUCKET_MS;
      for (const k of buckets.keys()) if (k < oldest) buckets.delete(k);
    }
    b.requests += 1;
    if (status >= 500) b.errors += 1;
    b.msSum += ms;
    b.msMax = Math.max(b.msMax, ms);
    this.totals.set(fn, (this.totals.get(fn) ?? 0) + 1);
  }

  /** Per function: rate, error rate and latency over the last minute, and the total since start. */
  summary(names: string[], now = Date.now()): FunctionSummary[] {
    const since = now - 60_000;
    return [...new Set([...names, ...this.data.keys()])].sort().map((name) => {
      let requests = 0;
      let errors = 0;
      let msSum = 0;
      let msMax = 0;
      for (const [start, b] of this.data.get(name) ?? []) {
        if (start + BUCKET_MS <= since) continue;
        requests += b.requests;
        errors += b.errors;
        msSum += b.msSum;
        msMax = Math.max(msMax, b.msMax);
      }
      return {
        name,
        requestsPerSecond: requests / 60,
        errorRate: requests > 0 ? errors / requests : 0,
        avgMs: requests > 0 ? msSum / requests : 0,
        maxMs: msMax,
        total: this.totals.get(name) ?? 0,
      };
    });
  }

  /** Every bucket of the last 30 minutes up to now (empty buckets: zero requests, no latency). */
  series(now = Date.now()): SeriesData {
    const last = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const starts = Array.from({ length: BUCKETS }, (_, i) => last - (BUCKETS - 1 - i) * BUCKET_MS);
    const functions: SeriesData["functions"] = {};
    for (const [name, buckets] of this.data) {
      const pick = (f: (b: Bucket) => number | null) =>
        starts.map((s) => {
          const b = buckets.get(s);
          return b ? f(b) : null;
        });
      functions[name] = {
        rps: starts.map((s) => (buckets.get(s)?.requests ?? 0) / (BUCKET_MS / 1000)),
        errorRate: pick((b) => (b.requests > 0 ? (100 * b.errors) / b.requests : null)),
        avgMs: pick((b) => (b.requests > 0 ? b.msSum / b.requests : null)),
      };
    }
    return { t: starts.map((s) => s / 1000), functions };
  }
}
