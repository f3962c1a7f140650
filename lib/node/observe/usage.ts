/**
 * Usage analytics in PostgreSQL: requests, 5xx errors and total duration per function per minute, added
 * to (never overwritten) by the collector of every node, so several nodes on one database add up; an
 * hourly platform job rolls complete hours into workyard.usage_hourly (days: the view usage_daily).
 */
import type { Sql } from "postgres";
import { BatchFlusher } from "./batch-flusher.ts";

interface Counts {
  requests: number;
  errors: number;
  durationMs: number;
}

export interface UsageRow {
  period: Date;
  function: string;
  requests: number;
  errors: number;
  durationMs: number;
}

const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;

export class UsageCounter {
  private readonly batches: BatchFlusher<Counts>;

  private readonly sql: Sql;
  private readonly log: (line: string) => void;

  constructor(sql: Sql, log: (line: string) => void, flushEveryMs = 10_000) {
    this.sql = sql;
    this.log = log;
    this.batches = new BatchFlusher(
      (batch) => this.write(batch),
      flushEveryMs,
      (err) => this.log(`usage: could not record counts: ${(err as Error).message}`),
    );
  }

  count(fn: string, at: number, status: number, durationMs: number): void {
    const pending = this.batches.pending;
    const key = `${minute(at)}\0${fn}`;
    const c = pending.get(key) ?? { requests: 0, errors: 0, durationMs: 0 };
    c.requests += 1;
    if (status >= 500) c.errors += 1;
    c.durationMs += Math.round(durationMs);
    pending.set(key, c);
  }

  /** Adds what was counted since the last flush to the minute rows. */
  flush(): Promise<void> {
    return this.batches.flush();
  }

  private async write(batch: Map<string, Counts>): Promise<void> {
    const rows = [...batch.entries()].map(([key, c]) => {
      const [bucket = "0", fn = ""] = key.split("\0");
      return { bucket: new Date(Number(bucket)), function_name: fn, requests: c.requests, errors: c.errors, duration_ms: c.durationMs };
    });
    await this.sql`
      insert into workyard.usage_minutes ${this.sql(rows, "bucket", "function_name", "requests", "errors", "duration_ms")}
      on conflict (bucket, function_name) do update set
        requests = usage_minutes.requests + excluded.requests,
        errors = usage_minutes.errors + excluded.errors,
        duration_ms = usage_minutes.duration_ms + excluded.duration_ms`;
  }

  stop(): Promise<void> {
    return this.batches.stop();
  }
}

/**
 * Moves the minute rows of complete hours (before `before`, default the start of this hour) into
 * usage_hourly, in one statement: safe to run on several nodes at once (a row is moved once).
 * Returns how many minute rows it moved.
 */
export async function rollUpUsage(sql: Sql, before = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000)): Promise<number> {
  // One statement: atomic by itself.
  const moved = await sql<{ n: string }[]>`
      with moved as (delete from workyard.usage_minutes where bucket < ${before} returning *),
      added as (
        insert into workyard.usage_hourly (hour, function_name, requests, errors, duration_ms)
        select date_trunc('hour', bucket, 'UTC'), function_name, sum(requests), sum(errors), sum(duration_ms) from moved group by 1, 2
        on conflict (hour, function_name) do update set
          requests = usage_hourly.requests + excluded.requests,
          errors = usage_hourly.errors + excluded.errors,
          duration_ms = usage_hourly.duration_ms + excluded.duration_ms
        returning 1)
      select count(*) as n from moved`;
  return Number(moved[0]?.n ?? 0);
}

/** Requests per function per hour or day since `since`, newest first (rolled-up hours only). */
export async function usage(sql: Sql, by: "hour" | "day", since: Date): Promise<UsageRow[]> {
  const rows =
    by === "hour"
      ? await sql<{ period: Date; function_name: string; requests: string; errors: string; duration_ms: string }[]>`
          select hour as period, function_name, requests, errors, duration_ms from workyard.usage_hourly where hour >= ${since} order by hour desc, function_name`
      : await sql<{ period: Date; function_name: string; requests: string; errors: string; duration_ms: string }[]>`
          select day as period, function_name, requests, errors, duration_ms from workyard.usage_daily where day >= ${since} order by day desc, function_name`;
  return rows.map((r) => ({
    period: r.period,
    function: r.function_name,
    requests: Number(r.requests),
    errors: Number(r.errors),
    durationMs: Number(r.duration_ms),
  }));
}
