/**
 * The collector: a loopback HTTP server in the supervisor that every workerd process's workers send their trace
 * records to (the gateway its own, functions' through the internal worker's trace sink). From them it writes the request log (log-stream.ts), keeps the Prometheus metrics (metrics.ts), records errors
 * with source-mapped stacks (error-store.ts), counts usage (usage.ts) and keeps the dashboard's figures (series.ts);
 * ingest.ts turns records into those, collector-api.ts serves them. Because all processes report to this one place,
 * figures add up across workerd processes with nothing to merge. This module is the wiring and the platform job.
 */
import { randomBytes } from "node:crypto";
import { Cron } from "croner";
import postgres from "postgres";
import { listenLoopback } from "../common/http.ts";
import type { Manifest } from "../releases/manifest.ts";
import { collectorApi } from "./collector-api.ts";
import { ErrorStore } from "./error-store.ts";
import { TraceIngest } from "./ingest.ts";
import { LogStream } from "./log-stream.ts";
import type { LogTarget } from "./log-stream.ts";
import { Metrics } from "./metrics.ts";
import type { MetricSources } from "./metrics.ts";
import { Series } from "./series.ts";
import { SourceMapper } from "./source-maps.ts";
import { rollUpUsage, UsageCounter } from "./usage.ts";

export interface CollectorOptions {
  releaseDir: string;
  manifest: Manifest;
  /** The project's root (source-mapped paths are shown relative to it). */
  root: string;
  /** The platform's database, directly (not through PgBouncer). */
  databaseUrl: string;
  logTarget: LogTarget;
  logFile: string;
  /** Errors older than this are pruned. Default 14. */
  errorRetentionDays?: number;
  sources?: Omit<MetricSources, "cronRuns">;
  log: (line: string) => void;
  /** The bearer token senders must present; default a fresh random one. */
  token?: string;
}

export interface Collector {
  url: string;
  token: string;
  errors: ErrorStore;
  /** Writes pending errors and usage counts now, and rolls complete hours up (the platform job). */
  runPlatformJob(): Promise<void>;
  /**
   * The release served from now on (a deploy or rollback): its source maps, functions and crons. Traces the old
   * processes send while they drain are mapped with the new release's maps.
   */
  useRelease(releaseDir: string, manifest: Manifest): void;
  /** Counts a line of workerd's own stderr when it is one of workerd's errors (not a function's console.error). */
  workerdLine(line: string): void;
  stop(): Promise<void>;
}

/** workerd's own error lines: `workerd/server/server.c++:123: error: ...` (a function's console.error has no such prefix). */
const WORKERD_ERROR = /^workerd\/\S+:\d+: error: /;

/** Starts the collector on a free loopback port. */
export async function startCollector(opts: CollectorOptions): Promise<Collector> {
  const token = opts.token ?? randomBytes(24).toString("base64url");
  // Torn down in the reverse order of this list, on a failed start as on stop().
  const owned = new AsyncDisposableStack();
  try {
    const sql = postgres(opts.databaseUrl, { max: 3, onnotice: () => {}, idle_timeout: 30 });
    owned.defer(() => sql.end({ timeout: 5 }));
    let manifest = opts.manifest;
    const metrics = new Metrics({
      ...opts.sources,
      cronRuns: async () => {
        const rows = await sql<{ function_name: string; cron: string; status: string; n: string; last: Date }[]>`
          select function_name, cron, status, count(*) as n, max(started_at) as last from workyard.cron_runs group by 1, 2, 3`;
        return rows.map((r) => ({ function: r.function_name, cron: r.cron, status: r.status, count: Number(r.n), lastStart: r.last }));
      },
    });
    const mapper = new SourceMapper(opts.releaseDir, opts.manifest, opts.root);
    const logs = new LogStream(opts.logTarget, opts.logFile);
    owned.defer(() => logs.stop());
    const errors = new ErrorStore(sql, mapper, opts.log, (r) => metrics.error(r.function, r.kind));
    const usage = new UsageCounter(sql, opts.log);
    owned.defer(() => usage.stop());
    owned.defer(() => errors.stop());
    const series = new Series();
    const ingest = new TraceIngest({ metrics, logs, series, usage, errors });
    owned.defer(() => ingest.stop());

    const server = await listenLoopback(
      collectorApi({ token, sql, metrics, errors, logs, series, ingest, manifest: () => manifest, queues: opts.sources?.queues }),
      {
        keepAliveTimeoutMs: 65_000,
        onError: (err, req) => opts.log(`collector: ${req.method} ${req.url} failed: ${(err as Error).message}`),
      },
    );
    owned.defer(() => server.close());

    const retentionDays = opts.errorRetentionDays ?? 14;
    const runPlatformJob = async () => {
      ingest.settle(true);
      await errors.flush();
      await usage.flush();
      await rollUpUsage(sql);
      await errors.prune(retentionDays);
    };
    const job = new Cron("*/10 * * * *", { timezone: "UTC", protect: true }, () => {
      runPlatformJob().catch((err: unknown) => opts.log(`observability job: ${(err as Error).message}`));
    });
    owned.defer(() => job.stop());

    const stack = owned.move();
    return {
      url: server.url,
      token,
      errors,
      runPlatformJob,
      useRelease(releaseDir, next) {
        mapper.use(releaseDir, next);
        manifest = next;
      },
      workerdLine(line) {
        if (WORKERD_ERROR.test(line)) metrics.workerdErrors.inc();
      },
      stop: () => stack.disposeAsync(),
    };
  } catch (err) {
    await owned.disposeAsync();
    throw err;
  }
}
