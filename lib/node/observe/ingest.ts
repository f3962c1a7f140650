/**
 * What the collector does with each trace record the workers send: a request-log line per access and per
 * console line, the metrics, the dashboard's series, usage counts, and errors. An error waits briefly for the rest
 * of its request (the gateway's status and the function's trace arrive separately, and an uncaught exception is
 * worth more than the log line of the same failure) before it is recorded.
 */
import type { AccessRecord, TraceRecord } from "../../workers/trace/record.ts";
import type { ErrorReport, ErrorStore } from "./error-store.ts";
import type { LogStream } from "./log-stream.ts";
import type { Metrics } from "./metrics.ts";
import { levelOf, loggedError, messageText, statusLevel } from "./records.ts";
import type { Series } from "./series.ts";
import type { UsageCounter } from "./usage.ts";

/** How long an error waits for the rest of its request (the gateway's status, a better stack) before it is recorded. */
const SETTLE_MS = 1500;

interface Unsettled {
  since: number;
  access?: AccessRecord;
  error?: ErrorReport;
}

const rank = (r: ErrorReport | undefined) => (r === undefined ? 0 : r.kind === "exception" ? 2 : 1);

export interface IngestSinks {
  metrics: Metrics;
  logs: LogStream;
  series: Series;
  usage: UsageCounter;
  errors: ErrorStore;
}

export class TraceIngest {
  /** By function and request id: a request id is the client's to choose, and one function's error never settles another's request. */
  private readonly unsettled = new Map<string, Unsettled>();
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly sinks: IngestSinks;

  constructor(sinks: IngestSinks) {
    this.sinks = sinks;
    this.timer = setInterval(() => this.settle(), 250);
    this.timer.unref();
  }

  /** Takes one trace record. */
  record(rec: TraceRecord): void {
    const { metrics, logs, series, usage } = this.sinks;
    metrics.traceRecords.inc();
    for (const a of rec.access) {
      const ts = a.ts ?? rec.ts;
      logs.write({
        time: new Date(ts).toISOString(),
        type: "request",
        level: statusLevel(a.status),
        requestId: a.id,
        function: a.fn,
        method: a.method,
        path: a.path,
        status: a.status,
        durationMs: a.ms,
        clientIp: a.ip,
      });
      metrics.request(a.fn, a.method, a.status, a.ms, a.inflight, a.proc);
      if (a.fn !== null) {
        series.add(a.fn, ts, a.status, a.ms);
        usage.count(a.fn, ts, a.status, a.ms);
      }
      if (a.status >= 500 && a.id) this.pending(a.fn ?? "", a.id).access = a;
    }
    const first = rec.access[0];
    const fn = rec.worker === "gateway" ? (first?.fn ?? "gateway") : rec.worker;
    const requestId = rec.request?.id ?? first?.id ?? null;
    const request = rec.request ? URL.parse(rec.request.url) : null;
    const base = {
      function: fn,
      worker: rec.worker,
      requestId,
      method: rec.request?.method ?? null,
      path: request?.pathname ?? null,
      cron: rec.cron ?? null,
    };
    for (const e of rec.outbound ?? []) metrics.outbound.record(fn, e);
    if (rec.dbCache) metrics.dbCache(fn, rec.dbCache);
    for (const l of rec.logs) {
      const level = levelOf(l.level);
      logs.write({
        time: new Date(l.ts).toISOString(),
        type: "log",
        level,
        requestId,
        function: fn,
        ...(rec.cron !== undefined ? { cron: rec.cron } : {}),
        message: messageText(l.message),
      });
      metrics.logLine(fn, level);
      if (level !== "error") continue;
      for (const arg of l.message) {
        const err = loggedError(arg);
        if (err)
          this.candidate({
            ...base,
            at: new Date(l.ts),
            kind: "logged",
            name: err.name,
            message: err.message,
            stack: err.stack,
            status: null,
          });
      }
    }
    for (const e of rec.exceptions) {
      this.candidate({
        ...base,
        at: new Date(e.ts),
        kind: "exception",
        name: e.name,
        message: e.message,
        stack: `${e.name}: ${e.message}\n${e.stack}`,
        status: rec.request?.status ?? null,
      });
    }
    if (rec.cron !== undefined) {
      logs.write({
        time: new Date(rec.ts).toISOString(),
        type: "scheduled",
        level: rec.outcome === "ok" ? "info" : "error",
        function: fn,
        cron: rec.cron,
        outcome: rec.outcome,
      });
      metrics.scheduledRun(fn, rec.outcome);
    }
  }

  /** Records the errors that waited long enough (all of them when `force`). */
  settle(force = false): void {
    const now = Date.now();
    for (const [key, u] of this.unsettled) {
      if (!force && now - u.since < SETTLE_MS) continue;
      this.unsettled.delete(key);
      const a = u.access;
      if (u.error) {
        // A logged error on a request that was answered below 500 was handled: not an error of the platform's.
        if (u.error.kind === "logged" && a && a.status < 500) continue;
        this.sinks.errors.report({
          ...u.error,
          method: a?.method ?? u.error.method,
          path: a?.path ?? u.error.path,
          status: a?.status ?? u.error.status,
        });
      } else if (a && a.status >= 500) {
        this.sinks.errors.report({
          at: new Date(now),
          function: a.fn ?? "",
          worker: "gateway",
          kind: "5xx",
          name: `HTTP ${a.status}`,
          message: `${a.method} answered ${a.status}`,
          stack: null,
          requestId: a.id,
          method: a.method,
          path: a.path,
          status: a.status,
        });
      }
    }
  }

  /** Records everything still waiting and stops the timer. */
  stop(): void {
    clearInterval(this.timer);
    this.settle(true);
  }

  private pending(fn: string, id: string): Unsettled {
    const key = `${fn}\0${id}`;
    let u = this.unsettled.get(key);
    if (!u) this.unsettled.set(key, (u = { since: Date.now() }));
    return u;
  }

  private candidate(report: ErrorReport): void {
    if (report.requestId === null) return this.sinks.errors.report(report);
    const u = this.pending(report.function, report.requestId);
    if (rank(report) > rank(u.error)) u.error = report;
  }
}
