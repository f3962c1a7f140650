/**
 * The collector: a loopback HTTP server in the supervisor that every workerd process's tail worker sends
 * its traces to. From them it writes the request log (log-stream.ts), keeps the Prometheus metrics
 * (metrics.ts), records errors with source-mapped stacks (error-store.ts), counts usage (usage.ts) and
 * keeps the dashboard's figures (series.ts). Because all processes report to this one place, figures add
 * up across workerd processes with nothing to merge. Every request needs its bearer token; the internal
 * worker forwards /metrics, /errors, /usage and /dashboard to it.
 *   POST /ingest                 a batch of trace records (the tail worker)
 *   GET  /metrics                Prometheus text format
 *   GET  /errors?function=&limit=        grouped errors, latest first, each with its latest stack
 *   GET  /usage?by=hour|day&days=N       requests per function per hour or day (rolled up)
 *   GET  /logs?function=&level=&status=&tail=N&follow=1   the request log as JSON lines; follow keeps it open
 *   GET  /dashboard, /dashboard/data, /dashboard/assets/*  the dashboard page, its figures, uPlot
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { Cron } from "croner";
import postgres from "postgres";
import type { AccessRecord, TraceRecord } from "../../workers/trace-record.ts";
import { nextFire } from "../cron/crons.ts";
import type { Manifest } from "../releases/manifest.ts";
import { tokenChecker } from "../redis/proxy/auth.ts";
import { jobsOf } from "../cron/scheduler.ts";
import { dashboardPage } from "./dashboard-page.ts";
import { ErrorStore } from "./error-store.ts";
import type { ErrorReport } from "./error-store.ts";
import { filterSchema, LogStream } from "./log-stream.ts";
import type { LogTarget } from "./log-stream.ts";
import { Metrics } from "./metrics.ts";
import type { MetricSources } from "./metrics.ts";
import { batchSchema, levelOf, loggedError, messageText, statusLevel } from "./records.ts";
import { Series } from "./series.ts";
import { SourceMapper } from "./source-maps.ts";
import { rollUpUsage, usage, UsageCounter } from "./usage.ts";

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
  stop(): Promise<void>;
}

/** How long an error waits for the rest of its request (the gateway's status, a better stack) before it is recorded. */
const SETTLE_MS = 1500;
const MAX_INGEST_BYTES = 16 * 1024 * 1024;
const uplotDir = join(dirname(createRequire(import.meta.url).resolve("uplot")), "..", "dist");

interface Unsettled {
  since: number;
  access?: AccessRecord;
  error?: ErrorReport;
}

const rank = (r: ErrorReport | undefined) => (r === undefined ? 0 : r.kind === "exception" ? 2 : 1);

function send(res: ServerResponse, status: number, body: unknown, type = "application/json; charset=utf-8"): void {
  const text = typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_INGEST_BYTES) throw new Error(`batch larger than ${MAX_INGEST_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Starts the collector on a free loopback port. */
export async function startCollector(opts: CollectorOptions): Promise<Collector> {
  const token = opts.token ?? randomBytes(24).toString("base64url");
  const sql = postgres(opts.databaseUrl, { max: 3, onnotice: () => {}, idle_timeout: 30 });
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
  const errors = new ErrorStore(sql, mapper, opts.log, (r) => metrics.error(r.function, r.kind));
  const usageCounter = new UsageCounter(sql, opts.log);
  const logs = new LogStream(opts.logTarget, opts.logFile);
  const series = new Series();

  // Errors of a request wait briefly for the rest of it: the gateway's record (status) and the function's
  // trace arrive separately, and an uncaught exception is worth more than the log line of the same failure.
  const unsettled = new Map<string, Unsettled>();
  const settle = (force = false) => {
    const now = Date.now();
    for (const [id, u] of unsettled) {
      if (!force && now - u.since < SETTLE_MS) continue;
      unsettled.delete(id);
      const a = u.access;
      if (u.error) {
        // A logged error on a request that was answered below 500 was handled: not an error of the platform's.
        if (u.error.kind === "logged" && a && a.status < 500) continue;
        errors.report({ ...u.error, method: a?.method ?? u.error.method, path: a?.path ?? u.error.path, status: a?.status ?? u.error.status });
      } else if (a && a.status >= 500) {
        errors.report({
          at: new Date(now), function: a.fn ?? "", worker: "gateway", kind: "5xx", name: `HTTP ${a.status}`,
          message: `${a.method} answered ${a.status}`, stack: null, requestId: a.id, method: a.method, path: a.path, status: a.status,
        });
      }
    }
  };
  const settleTimer = setInterval(settle, 250);
  settleTimer.unref();
  const pending = (id: string) => {
    let u = unsettled.get(id);
    if (!u) unsettled.set(id, (u = { since: Date.now() }));
    return u;
  };
  const candidate = (report: ErrorReport) => {
    if (report.requestId === null) return errors.report(report);
    const u = pending(report.requestId);
    if (rank(report) > rank(u.error)) u.error = report;
  };

  function ingest(rec: TraceRecord): void {
    metrics.traceRecords.inc();
    for (const a of rec.access) {
      logs.write({
        time: new Date(rec.ts).toISOString(), type: "request", level: statusLevel(a.status), requestId: a.id, function: a.fn,
        method: a.method, path: a.path, status: a.status, durationMs: a.ms, clientIp: a.ip,
      });
      metrics.request(a.fn, a.method, a.status, a.ms, a.inflight, a.proc);
      if (a.fn !== null) {
        series.add(a.fn, rec.ts, a.status, a.ms);
        usageCounter.count(a.fn, rec.ts, a.status, a.ms);
      }
      if (a.status >= 500 && a.id) pending(a.id).access = a;
    }
    const first = rec.access[0];
    const fn = rec.worker === "gateway" ? (first?.fn ?? "gateway") : rec.worker;
    const requestId = rec.request?.id ?? first?.id ?? null;
    const request = rec.request ? new URL(rec.request.url) : undefined;
    const base = { function: fn, worker: rec.worker, requestId, method: rec.request?.method ?? null, path: request?.pathname ?? null, cron: rec.cron ?? null };
    for (const l of rec.logs) {
      const level = levelOf(l.level);
      logs.write({
        time: new Date(l.ts).toISOString(), type: "log", level, requestId, function: fn,
        ...(rec.cron !== undefined ? { cron: rec.cron } : {}), message: messageText(l.message),
      });
      metrics.logLine(fn, level);
      if (level !== "error") continue;
      for (const arg of l.message) {
        const err = loggedError(arg);
        if (err) candidate({ ...base, at: new Date(l.ts), kind: "logged", name: err.name, message: err.message, stack: err.stack, status: null });
      }
    }
    for (const e of rec.exceptions) {
      candidate({
        ...base, at: new Date(e.ts), kind: "exception", name: e.name, message: e.message,
        stack: `${e.name}: ${e.message}\n${e.stack}`, status: rec.request?.status ?? null,
      });
    }
    if (rec.cron !== undefined) {
      logs.write({ time: new Date(rec.ts).toISOString(), type: "scheduled", level: rec.outcome === "ok" ? "info" : "error", function: fn, cron: rec.cron, outcome: rec.outcome });
      metrics.scheduledRun(fn, rec.outcome);
    }
  }

  async function cronListing() {
    const rows = await sql<{ function_name: string; cron: string; status: string; started_at: Date; finished_at: Date | null; error: string | null; trigger: string }[]>`
      select distinct on (function_name, cron) function_name, cron, status, started_at, finished_at, error, trigger
      from workyard.cron_runs order by function_name, cron, started_at desc`;
    return jobsOf(manifest.functions).map((j) => {
      const last = rows.find((r) => r.function_name === j.functionName && r.cron === j.cron);
      return {
        function: j.functionName,
        cron: j.cron,
        next: nextFire(j.cron),
        last: last ? { status: last.status, trigger: last.trigger, startedAt: last.started_at, finishedAt: last.finished_at, error: last.error } : null,
      };
    });
  }

  const checkToken = tokenChecker(token);
  // Exactly `Authorization: Bearer <token>` (no other scheme spelling, no query parameter).
  const authorized = (req: IncomingMessage) => checkToken(/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1]);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!authorized(req)) return send(res, 401, { error: { code: "unauthorized", message: "The collector needs Authorization: Bearer <collector token>" } });
    const url = new URL(req.url ?? "/", "http://collector");
    const q = Object.fromEntries(url.searchParams);
    if (req.method === "POST" && url.pathname === "/ingest") {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        metrics.rejectedBatches.inc();
        return send(res, 400, { error: { code: "invalid_input", message: `The batch is not JSON: ${(err as Error).message}` } });
      }
      const parsed = batchSchema.safeParse(body);
      if (!parsed.success) {
        metrics.rejectedBatches.inc();
        return send(res, 400, { error: { code: "invalid_input", message: parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") } });
      }
      for (const rec of parsed.data) ingest(rec);
      return send(res, 202, { accepted: parsed.data.length });
    }
    if (req.method !== "GET") return send(res, 405, { error: { code: "method_not_allowed", message: "Use GET (or POST /ingest)" } });
    switch (url.pathname) {
      case "/metrics":
        return send(res, 200, await metrics.text(), metrics.registry.contentType);
      case "/errors": {
        const limit = Math.min(200, Math.max(1, Number(q.limit ?? 50) || 50));
        return send(res, 200, { errors: await errors.recent(limit, q.function) });
      }
      case "/usage": {
        const by = q.by === "day" ? "day" : "hour";
        const days = Math.min(3650, Math.max(1, Number(q.days ?? 7) || 7));
        return send(res, 200, { by, usage: await usage(sql, by, new Date(Date.now() - days * 86_400_000)) });
      }
      case "/logs": {
        const filter = filterSchema.safeParse({ function: q.function, level: q.level, status: q.status });
        if (!filter.success) return send(res, 400, { error: { code: "invalid_input", message: filter.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") } });
        res.writeHead(200, { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "no-store" });
        for (const line of logs.recent(filter.data, Math.min(2000, Math.max(0, Number(q.tail ?? 20) || 0)))) res.write(`${JSON.stringify(line)}\n`);
        if (q.follow !== "1") return void res.end();
        const unfollow = logs.follow(filter.data, (line) => res.write(`${JSON.stringify(line)}\n`));
        // A comment-free keep-alive: an empty line now and then tells a dead client apart.
        const ping = setInterval(() => res.write("\n"), 15_000);
        res.on("close", () => {
          clearInterval(ping);
          unfollow();
        });
        return;
      }
      case "/dashboard":
        return send(res, 200, dashboardPage(), "text/html; charset=utf-8");
      case "/dashboard/data":
        return send(res, 200, {
          now: Date.now(),
          release: manifest.id,
          functions: series.summary(manifest.functions.map((f) => f.name)),
          series: series.series(),
          errors: await errors.recent(10),
          crons: await cronListing(),
        });
      case "/dashboard/assets/uplot.js":
        return send(res, 200, await readFile(join(uplotDir, "uPlot.iife.min.js")), "text/javascript; charset=utf-8");
      case "/dashboard/assets/uplot.css":
        return send(res, 200, await readFile(join(uplotDir, "uPlot.min.css")), "text/css; charset=utf-8");
      default:
        return send(res, 404, { error: { code: "not_found", message: "No such collector endpoint" } });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log(`collector: ${req.method} ${req.url} failed: ${(err as Error).message}`);
      if (!res.headersSent) send(res, 500, { error: { code: "internal_error", message: (err as Error).message } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const retentionDays = opts.errorRetentionDays ?? 14;
  const runPlatformJob = async () => {
    settle(true);
    await errors.flush();
    await usageCounter.flush();
    await rollUpUsage(sql);
    await errors.prune(retentionDays);
  };
  const job = new Cron("*/10 * * * *", { timezone: "UTC", protect: true }, () => {
    runPlatformJob().catch((err: unknown) => opts.log(`observability job: ${(err as Error).message}`));
  });

  return {
    url,
    token,
    errors,
    runPlatformJob,
    useRelease(releaseDir, next) {
      mapper.use(releaseDir, next);
      manifest = next;
    },
    async stop() {
      job.stop();
      clearInterval(settleTimer);
      settle(true);
      await errors.stop();
      await usageCounter.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await logs.stop();
      await sql.end({ timeout: 5 });
    },
  };
}
