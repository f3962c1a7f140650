/**
 * The tail worker: workerd hands it the trace of every invocation of each function in its own isolate (logs,
 * exceptions, the request and its status, cron runs). It keeps the parts the platform uses and sends them in
 * batches to the supervisor's collector on loopback (trace-sender.ts), which writes the request log, keeps
 * the metrics and records errors. The worker's name comes in through `props` (workerd leaves `scriptName`
 * null). The gateway has no tail worker: it makes its records in its own isolate (gateway-trace.ts), which
 * costs far less than a trace and a tail invocation per request.
 */
import type { TraceRecord } from "./trace-record.ts";
import { deliver } from "./trace-sender.ts";
import type { CollectorEnv } from "./trace-sender.ts";
import { boundedLogValue } from "./trace-record.ts";
import { COLLECTOR_URL_VAR } from "../shared/names.ts";
import { OUTBOUND_CHANNEL } from "../shared/outbound-event.ts";
import type { OutboundEvent } from "../shared/outbound-event.ts";
import { DB_CACHE_CHANNEL } from "../shared/db-cache-event.ts";
import type { DbCacheCounts, DbCacheEvent } from "../shared/db-cache-event.ts";

/** The parts of a trace item the collector uses. */
export function toRecord(item: TraceItem, worker: string): TraceRecord {
  const event = item.event as Partial<TraceItemFetchEventInfo & TraceItemScheduledEventInfo> | null;
  const record: TraceRecord = {
    worker,
    ts: item.eventTimestamp ?? Date.now(),
    outcome: item.outcome,
    access: [],
    logs: item.logs.map((l) => ({
      ts: l.timestamp,
      level: l.level,
      message: (Array.isArray(l.message) ? (l.message as unknown[]) : [l.message]).map(boundedLogValue),
    })),
    exceptions: item.exceptions.map((e) => ({ ts: e.timestamp, name: e.name, message: e.message, stack: e.stack ?? "" })),
  };
  const outbound = (item.diagnosticsChannelEvents ?? [])
    .filter((e) => e.channel === OUTBOUND_CHANNEL)
    .map((e) => e.message as OutboundEvent);
  if (outbound.length > 0) record.outbound = outbound;
  const dbCache = dbCacheCounts(item.diagnosticsChannelEvents ?? []);
  if (dbCache) record.dbCache = dbCache;
  if (event?.request) {
    record.request = {
      id: event.request.headers["x-request-id"] ?? null,
      method: event.request.method,
      url: event.request.url,
      status: event.response?.status ?? null,
    };
  }
  if (typeof event?.cron === "string") record.cron = event.cron;
  return record;
}

/** The read cache's events of one invocation as counts (a busy cached route publishes one per read). */
function dbCacheCounts(events: readonly { channel: string; message: unknown }[]): DbCacheCounts | undefined {
  let counts: DbCacheCounts | undefined;
  for (const e of events) {
    if (e.channel !== DB_CACHE_CHANNEL) continue;
    const m = e.message as DbCacheEvent;
    counts ??= {};
    if ("read" in m) counts[m.read] = (counts[m.read] ?? 0) + 1;
    else counts[m.invalidated] = (counts[m.invalidated] ?? 0) + m.count;
  }
  return counts;
}

export default {
  tail(events: TraceItem[], env: CollectorEnv, ctx: ExecutionContext<{ worker?: string }>): void {
    if (!env[COLLECTOR_URL_VAR]) return;
    const worker = ctx.props?.worker ?? "unknown";
    deliver(
      events.map((item) => toRecord(item, worker)),
      env,
      ctx,
    );
  },
};
