/**
 * The platform's Prometheus metrics (prom-client), kept by the supervisor's collector. Every workerd
 * process's workers report to this one collector, so counters and histograms are already the sum
 * over processes; in-flight requests are sampled per process (by the gateway, at each request's start)
 * and summed over the processes heard from in the last few seconds. Pool, proxy and cron figures are read
 * when scraped.
 */
import { outcomeLabel } from "../../workers/trace/record.ts";
import client from "prom-client";
import type { Gauge } from "prom-client";
import type { RedisProxyStats } from "../redis/proxy/index.ts";
import type { ErrorKind } from "./error-store.ts";
import type { PoolFigures } from "./pool-stats.ts";
import { OutboundFigures } from "./outbound-figures.ts";
import { DB_CACHE_INVALIDATIONS, DB_CACHE_READS } from "../../shared/db-cache-event.ts";
import type { DbCacheCounts } from "../../shared/db-cache-event.ts";

export interface MetricSources {
  /** The Redis proxy's counters. */
  redisProxy?: () => RedisProxyStats;
  /** PgBouncer's SHOW POOLS / SHOW STATS (undefined when there is no PgBouncer). */
  pool?: () => Promise<PoolFigures | undefined>;
  /** Cron runs in the database: count by function, cron and status, and the latest start of each. */
  cronRuns?: () => Promise<{ function: string; cron: string; status: string; count: number; lastStart: Date }[]>;
  /** Queues: every node's messages by state and dead letters (the database), and this node's counts since start. */
  queues?: () => Promise<QueueMetrics>;
}

export interface QueueMetrics {
  queues: { queue: string; ready: number; inFlight: number; delayed: number; deadLetters: number; oldestMs: number }[];
  /** queue → outcome (sent, acked, retried, dead, dropped) → messages, on this node since it started. */
  totals: Map<string, Record<string, number>>;
}

const statusClass = (status: number) => `${Math.floor(status / 100)}xx`;

/**
 * One reading shared by the several gauges that show parts of it: a scrape calls every gauge's collect()
 * at once, so they share the read in progress; the next scrape reads again.
 */
function perScrape<T>(read: () => Promise<T>, fallback: T): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= read()
      .catch(() => fallback)
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** How long an in-flight sample of a workerd process counts after it was taken. */
const SAMPLE_TTL_MS = 5_000;

export class Metrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Counter;
  private readonly duration: client.Histogram;
  private readonly errors: client.Counter;
  private readonly logLines: client.Counter;
  private readonly scheduled: client.Counter;
  readonly traceRecords: client.Counter;
  readonly rejectedBatches: client.Counter;
  /** Errors workerd's own layers logged (its HTTP layer, an exception outside any function). */
  readonly workerdErrors: client.Counter;
  /** The upstreams functions call through the outbound helper. */
  readonly outbound: OutboundFigures;
  private readonly dbCacheReads: client.Counter;
  private readonly dbCacheInvalidations: client.Counter;
  /** function → process → [in-flight, when sampled]. */
  private readonly inFlight = new Map<string, Map<string, [number, number]>>();

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    this.requests = new client.Counter({
      name: "workyard_requests_total",
      help: "Requests through the gateway, by function (empty: the path named none), method and status class",
      labelNames: ["function", "method", "status_class"],
      registers,
    });
    this.duration = new client.Histogram({
      name: "workyard_request_duration_seconds",
      help: "Time from the request reaching the gateway to the response headers, by function",
      labelNames: ["function"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.outbound = new OutboundFigures(registers);
    this.dbCacheReads = new client.Counter({
      name: "workyard_db_cache_reads_total",
      help: "Reads through cached(), by function and outcome: hit (from the read cache), miss (from the database, or joined to the same read on its way, and kept when it may be), bypass (from the database, not kept: a write, or the cache not hearing notifications)",
      labelNames: ["function", "outcome"],
      registers,
    });
    this.dbCacheInvalidations = new client.Counter({
      name: "workyard_db_cache_invalidations_total",
      help: "Writes that dropped read cache entries, by function and origin: local (through the function's own pool), remote (told by another host)",
      labelNames: ["function", "origin"],
      registers,
    });
    const inFlight = this.inFlight;
    new client.Gauge({
      name: "workyard_requests_in_flight",
      help: "Requests being served, by function: each workerd process's latest sample (taken at a request's start), summed over processes",
      labelNames: ["function"],
      registers,
      collect(this: Gauge) {
        this.reset();
        const now = Date.now();
        for (const [fn, procs] of inFlight) {
          let sum = 0;
          for (const [proc, [n, at]] of procs) {
            if (now - at > SAMPLE_TTL_MS) procs.delete(proc);
            else sum += n;
          }
          this.set({ function: fn }, sum);
        }
      },
    });
    this.errors = new client.Counter({
      name: "workyard_errors_total",
      help: "Errors recorded in the error store, by function and kind (exception: uncaught; logged: a logged error with its stack; 5xx: a 5xx answer with neither)",
      labelNames: ["function", "kind"],
      registers,
    });
    this.logLines = new client.Counter({
      name: "workyard_log_lines_total",
      help: "console.* lines of functions, by function and level",
      labelNames: ["function", "level"],
      registers,
    });
    this.scheduled = new client.Counter({
      name: "workyard_scheduled_invocations_total",
      help: "scheduled() invocations seen in traces, by function and outcome",
      labelNames: ["function", "outcome"],
      registers,
    });
    this.traceRecords = new client.Counter({
      name: "workyard_trace_records_total",
      help: "Trace records received from the workers",
      registers,
    });
    this.workerdErrors = new client.Counter({
      name: "workyard_workerd_errors_total",
      help: "Errors workerd itself logged outside any function (its HTTP layer refusing a request, an uncaught exception in its event loop); each is also in the supervisor's log",
      registers,
    });
    this.rejectedBatches = new client.Counter({
      name: "workyard_trace_batches_rejected_total",
      help: "Trace batches refused as malformed",
      registers,
    });

    if (sources.cronRuns) {
      const runs = perScrape(sources.cronRuns, []);
      const gauge = (name: string, help: string, pick: (r: Awaited<ReturnType<typeof runs>>[number]) => number) =>
        new client.Gauge({
          name,
          help,
          labelNames: ["function", "cron", "status"],
          registers,
          async collect(this: Gauge) {
            const last = await runs();
            this.reset();
            for (const r of last) this.set({ function: r.function, cron: r.cron, status: r.status }, pick(r));
          },
        });
      gauge(
        "workyard_cron_runs",
        "Recorded cron runs (all nodes, within the table's history), by function, cron and status",
        (r) => r.count,
      );
      gauge(
        "workyard_cron_last_run_timestamp_seconds",
        "Start of the latest run of each cron, by status",
        (r) => r.lastStart.getTime() / 1000,
      );
    }

    if (sources.queues) {
      const read = perScrape(sources.queues, { queues: [], totals: new Map() });
      const perQueue = (name: string, help: string, labels: string[], fill: (g: Gauge, m: QueueMetrics) => void) =>
        new client.Gauge({
          name,
          help,
          labelNames: labels,
          registers,
          async collect(this: Gauge) {
            const m = await read();
            this.reset();
            fill(this, m);
          },
        });
      perQueue(
        "workyard_queue_messages",
        "Messages in each queue (all nodes), by state: ready, in_flight, delayed",
        ["queue", "state"],
        (g, m) => {
          for (const q of m.queues) {
            g.set({ queue: q.queue, state: "ready" }, q.ready);
            g.set({ queue: q.queue, state: "in_flight" }, q.inFlight);
            g.set({ queue: q.queue, state: "delayed" }, q.delayed);
          }
        },
      );
      perQueue("workyard_queue_dead_letters", "Messages moved into each queue from the queue they failed in", ["queue"], (g, m) => {
        for (const q of m.queues) g.set({ queue: q.queue }, q.deadLetters);
      });
      perQueue("workyard_queue_oldest_message_age_seconds", "Age of the oldest message of each queue not in flight", ["queue"], (g, m) => {
        for (const q of m.queues) g.set({ queue: q.queue }, q.oldestMs / 1000);
      });
      perQueue(
        "workyard_queue_messages_total",
        "Messages sent to, acked, retried, dead-lettered and dropped from each queue on this node since it started",
        ["queue", "outcome"],
        (g, m) => {
          for (const [queue, counts] of m.totals) for (const [outcome, n] of Object.entries(counts)) g.set({ queue, outcome }, n);
        },
      );
    }

    if (sources.redisProxy) {
      const stats = sources.redisProxy;
      new client.Gauge({
        name: "workyard_redis_proxy_responses_total",
        help: "Answers of the Redis proxy since it started, by status class",
        labelNames: ["status_class"],
        registers,
        collect(this: Gauge) {
          this.reset();
          const byClass = new Map<string, number>();
          for (const [status, n] of stats().responses) byClass.set(statusClass(status), (byClass.get(statusClass(status)) ?? 0) + n);
          for (const [c, n] of byClass) this.set({ status_class: c }, n);
        },
      });
      new client.Gauge({
        name: "workyard_redis_proxy_subscriptions",
        help: "Open subscription streams of the Redis proxy",
        registers,
        collect(this: Gauge) {
          this.set(stats().subscriptions);
        },
      });
    }

    if (sources.pool) {
      const figures = perScrape(sources.pool, undefined);
      const gauge = (name: string, help: string, pick: (p: PoolFigures["pools"][number]) => number) =>
        new client.Gauge({
          name,
          help,
          labelNames: ["database"],
          registers,
          async collect(this: Gauge) {
            const read = await figures();
            this.reset();
            for (const p of read?.pools ?? []) this.set({ database: p.database }, pick(p));
          },
        });
      gauge("workyard_pgbouncer_clients_active", "PgBouncer: client connections linked to a server connection", (p) => p.clActive);
      gauge("workyard_pgbouncer_clients_waiting", "PgBouncer: client connections waiting for a server connection", (p) => p.clWaiting);
      gauge("workyard_pgbouncer_servers_active", "PgBouncer: server connections in use", (p) => p.svActive);
      gauge("workyard_pgbouncer_servers_idle", "PgBouncer: server connections idle and ready", (p) => p.svIdle);
      gauge("workyard_pgbouncer_max_wait_seconds", "PgBouncer: how long the oldest waiting client has waited", (p) => p.maxWaitSeconds);
      gauge("workyard_pgbouncer_transactions_total", "PgBouncer: transactions pooled since it started (SHOW STATS)", (p) => p.transactions);
      gauge("workyard_pgbouncer_queries_total", "PgBouncer: queries pooled since it started (SHOW STATS)", (p) => p.queries);
    }

    client.collectDefaultMetrics({ register: this.registry, prefix: "workyard_supervisor_" });
  }

  request(fn: string | null, method: string, status: number, ms: number, inflight: number, proc: string): void {
    const name = fn ?? "";
    // A client chooses the method: only the standard ones become label values (bounded cardinality).
    this.requests.inc({ function: name, method: METHODS.has(method) ? method : "OTHER", status_class: statusClass(status) });
    this.duration.observe({ function: name }, ms / 1000);
    let procs = this.inFlight.get(name);
    if (!procs) this.inFlight.set(name, (procs = new Map()));
    // The request itself has finished by now: the sample counts the others that were running with it.
    procs.set(proc, [Math.max(0, inflight - 1), Date.now()]);
  }

  error(fn: string, kind: ErrorKind): void {
    this.errors.inc({ function: fn, kind });
  }

  /** One invocation's read cache counts (lib/shared/db-cache-event.ts). */
  dbCache(fn: string, counts: DbCacheCounts): void {
    for (const outcome of DB_CACHE_READS) if (counts[outcome]) this.dbCacheReads.inc({ function: fn, outcome }, counts[outcome]);
    for (const origin of DB_CACHE_INVALIDATIONS)
      if (counts[origin]) this.dbCacheInvalidations.inc({ function: fn, origin }, counts[origin]);
  }

  logLine(fn: string, level: string): void {
    this.logLines.inc({ function: fn, level });
  }

  scheduledRun(fn: string, outcome: string): void {
    this.scheduled.inc({ function: fn, outcome: outcomeLabel(outcome) });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
