/**
 * The collector's HTTP endpoints, all behind its bearer token (the internal worker forwards /metrics, /errors,
 * /usage and /dashboard to them):
 *   POST /ingest                 a batch of trace records (the gateway, the trace sink)
 *   GET  /metrics                Prometheus text format
 *   GET  /errors?function=&limit=        grouped errors, latest first, each with its latest stack
 *   GET  /usage?by=hour|day&days=N       requests per function per hour or day (rolled up)
 *   GET  /logs?function=&level=&status=&tail=N&follow=1   the request log as JSON lines; follow keeps it open
 *   GET  /dashboard, /dashboard/data?window=auto|5m|15m|60m, /dashboard/assets/*
 *                                the dashboard page, its figures over that window, uPlot
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Sql } from "postgres";
import { bearerChecker, HttpError, readBody, send, sendJson } from "../common/http.ts";
import type { Handler } from "../common/http.ts";
import { nextFire } from "../cron/crons.ts";
import { jobsOf } from "../cron/scheduler.ts";
import type { Manifest } from "../releases/manifest.ts";
import { dashboardPage } from "./dashboard-page.ts";
import type { ErrorStore } from "./error-store.ts";
import type { TraceIngest } from "./ingest.ts";
import { filterSchema } from "./log-stream.ts";
import type { LogStream } from "./log-stream.ts";
import type { MetricSources, Metrics } from "./metrics.ts";
import { consumersOf } from "../queues/config.ts";
import { batchSchema } from "../../workers/trace/schema.ts";
import { windowSchema } from "./series.ts";
import type { Series } from "./series.ts";
import { usage } from "./usage.ts";

const MAX_INGEST_BYTES = 16 * 1024 * 1024;
const uplotDir = join(dirname(createRequire(import.meta.url).resolve("uplot")), "..", "dist");

export interface CollectorApiDeps {
  token: string;
  sql: Sql;
  metrics: Metrics;
  errors: ErrorStore;
  logs: LogStream;
  series: Series;
  ingest: TraceIngest;
  /** The release served now. */
  manifest(): Manifest;
  /** Queue figures (every node's in the database, this node's counts), when the supervisor runs queues. */
  queues?: MetricSources["queues"];
}

/** Each queue the release consumes or that holds messages, with its consumer and figures, for the dashboard. */
async function queueListing(manifest: Manifest, read: MetricSources["queues"]) {
  const consumers = consumersOf(manifest.functions);
  const m = read ? await read().catch(() => undefined) : undefined;
  const names = [...new Set([...consumers.map((c) => c.queue), ...(m?.queues.map((q) => q.queue) ?? [])])].sort();
  return names.map((queue) => {
    const q = m?.queues.find((x) => x.queue === queue);
    const t = m?.totals.get(queue);
    return {
      queue,
      consumer: consumers.find((c) => c.queue === queue)?.functionName ?? null,
      ready: q?.ready ?? 0,
      inFlight: q?.inFlight ?? 0,
      delayed: q?.delayed ?? 0,
      deadLetters: q?.deadLetters ?? 0,
      oldestMs: q?.oldestMs ?? 0,
      sent: t?.sent ?? 0,
      acked: t?.acked ?? 0,
      failed: (t?.dead ?? 0) + (t?.dropped ?? 0),
    };
  });
}

/** Each cron of the release with its next fire and its last run, for the dashboard. */
async function cronListing(sql: Sql, manifest: Manifest) {
  const rows = await sql<
    {
      function_name: string;
      cron: string;
      status: string;
      started_at: Date;
      finished_at: Date | null;
      error: string | null;
      trigger: string;
    }[]
  >`
    select distinct on (function_name, cron) function_name, cron, status, started_at, finished_at, error, trigger
    from workyard.cron_runs order by function_name, cron, started_at desc`;
  return jobsOf(manifest.functions).map((j) => {
    const last = rows.find((r) => r.function_name === j.functionName && r.cron === j.cron);
    return {
      function: j.functionName,
      cron: j.cron,
      next: nextFire(j.cron),
      last: last
        ? { status: last.status, trigger: last.trigger, startedAt: last.started_at, finishedAt: last.finished_at, error: last.error }
        : null,
    };
  });
}

const issues = (error: { issues: { path: PropertyKey[]; message: string }[] }, max = Infinity) =>
  error.issues
    .slice(0, max)
    .map((i) => `${i.path.join(".")}: ${i.message}`)
    .join("; ");

/** The collector's request handler. */
export function collectorApi({ token, sql, metrics, errors, logs, series, ingest, manifest, queues }: CollectorApiDeps): Handler {
  const authorized = bearerChecker(token);
  return async function collectorRequest(req, res) {
    if (!authorized(req)) throw new HttpError(401, "unauthorized", "The collector needs Authorization: Bearer <collector token>");
    const url = new URL(req.url ?? "/", "http://collector");
    const q = Object.fromEntries(url.searchParams);
    if (req.method === "POST" && url.pathname === "/ingest") {
      let body: unknown;
      try {
        body = JSON.parse((await readBody(req, MAX_INGEST_BYTES)).toString("utf8"));
      } catch (err) {
        metrics.rejectedBatches.inc();
        if (err instanceof HttpError) throw err;
        throw new HttpError(400, "invalid_input", `The batch is not JSON: ${(err as Error).message}`);
      }
      const parsed = batchSchema.safeParse(body);
      if (!parsed.success) {
        metrics.rejectedBatches.inc();
        throw new HttpError(400, "invalid_input", issues(parsed.error, 3));
      }
      for (const rec of parsed.data) ingest.record(rec);
      return sendJson(res, 202, { accepted: parsed.data.length });
    }
    if (req.method !== "GET") throw new HttpError(405, "method_not_allowed", "Use GET (or POST /ingest)");
    switch (url.pathname) {
      case "/metrics":
        return send(res, 200, await metrics.text(), metrics.registry.contentType);
      case "/errors": {
        const limit = Math.min(200, Math.max(1, Number(q.limit ?? 50) || 50));
        return sendJson(res, 200, { errors: await errors.recent(limit, q.function) });
      }
      case "/usage": {
        const by = q.by === "day" ? "day" : "hour";
        const days = Math.min(3650, Math.max(1, Number(q.days ?? 7) || 7));
        return sendJson(res, 200, { by, usage: await usage(sql, by, new Date(Date.now() - days * 86_400_000)) });
      }
      case "/logs": {
        const filter = filterSchema.safeParse({ function: q.function, level: q.level, status: q.status });
        if (!filter.success) throw new HttpError(400, "invalid_input", issues(filter.error));
        const names = manifest().functions.map((f) => f.name);
        if (filter.data.function !== undefined && !names.includes(filter.data.function)) {
          throw new HttpError(
            404,
            "not_found",
            `No function named "${filter.data.function}" in the live release; its functions: ${names.join(", ")}`,
          );
        }
        res.writeHead(200, { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "no-store" });
        for (const line of logs.recent(filter.data, Math.min(2000, Math.max(0, Number(q.tail ?? 20) || 0))))
          res.write(`${JSON.stringify(line)}\n`);
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
      case "/dashboard/data": {
        const window = windowSchema.safeParse(q.window ?? "auto");
        if (!window.success) throw new HttpError(400, "invalid_input", window.error.issues.map((i) => i.message).join("; "));
        const current = manifest();
        const now = Date.now();
        return sendJson(res, 200, {
          now,
          release: current.id,
          ...series.figures(
            current.functions.map((f) => f.name),
            window.data,
            now,
          ),
          errors: await errors.recent(10),
          crons: await cronListing(sql, current),
          queues: await queueListing(current, queues),
          upstreams: metrics.outbound.listing(),
        });
      }
      case "/dashboard/assets/uplot.js":
        return send(res, 200, await readFile(join(uplotDir, "uPlot.iife.min.js")), "text/javascript; charset=utf-8");
      case "/dashboard/assets/uplot.css":
        return send(res, 200, await readFile(join(uplotDir, "uPlot.min.css")), "text/css; charset=utf-8");
      default:
        throw new HttpError(404, "not_found", "No such collector endpoint");
    }
  };
}
