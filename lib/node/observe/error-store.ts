/**
 * The error store: every uncaught exception, every error a function logged with its stack, and every 5xx
 * that had neither, kept in PostgreSQL (workyard.error_groups / error_events) grouped by fingerprint, with
 * stacks source-mapped to the TypeScript sources. Writes are batched once a second; a storm of one error
 * adds to its group's count without writing thousands of events (at most EVENTS_PER_FLUSH per group).
 */
import { createHash } from "node:crypto";
import type { Sql } from "postgres";
import { BatchFlusher } from "./batch-flusher.ts";
import type { SourceMapper } from "./source-maps.ts";

export type ErrorKind = "exception" | "logged" | "5xx";

export interface ErrorReport {
  at: Date;
  function: string;
  /** The worker whose trace it came from (whose source map applies). */
  worker: string;
  kind: ErrorKind;
  name: string;
  message: string;
  stack: string | null;
  requestId: string | null;
  method?: string | null;
  path?: string | null;
  status?: number | null;
  cron?: string | null;
}

export interface ErrorGroup {
  fingerprint: string;
  function: string;
  kind: ErrorKind;
  name: string;
  message: string;
  location: string | null;
  count: number;
  firstSeen: Date;
  lastSeen: Date;
  /** The latest event: its request id and source-mapped stack. */
  latest: {
    requestId: string | null;
    status: number | null;
    method: string | null;
    path: string | null;
    cron: string | null;
    stack: string | null;
    at: Date;
  } | null;
}

const EVENTS_PER_FLUSH = 5;

/** The message with what varies from one occurrence to the next (ids, numbers) taken out. */
export function normalizeMessage(message: string): string {
  return message
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>")
    .replace(/\b[0-9a-f]{12,}\b/gi, "<hex>")
    .replace(/\d+/g, "<n>")
    .slice(0, 500);
}

/** Same function, kind, error name, normalized message and top frame's file: same group. */
export function fingerprintOf(r: Pick<ErrorReport, "function" | "kind" | "name" | "message">, location: string | null): string {
  const file = location?.replace(/:\d+:\d+$/, "") ?? "";
  return createHash("sha256")
    .update([r.function, r.kind, r.name, normalizeMessage(r.message), file].join("\0"))
    .digest("hex")
    .slice(0, 32);
}

interface Pending {
  group: Omit<ErrorGroup, "latest" | "count"> & { count: number };
  events: (ErrorReport & { mappedStack: string | null })[];
}

export class ErrorStore {
  private readonly batches: BatchFlusher<Pending>;
  private readonly sql: Sql;
  private readonly mapper: SourceMapper;
  private readonly log: (line: string) => void;
  /** Called once per report, with its group's fingerprint (metrics). */
  private readonly onReport: (r: ErrorReport, fingerprint: string) => void;

  constructor(
    sql: Sql,
    mapper: SourceMapper,
    log: (line: string) => void,
    onReport: (r: ErrorReport, fingerprint: string) => void = () => {},
  ) {
    this.sql = sql;
    this.mapper = mapper;
    this.log = log;
    this.onReport = onReport;
    this.batches = new BatchFlusher(
      (batch) => this.write(batch),
      1000,
      (err) => this.log(`errors: could not record errors: ${(err as Error).message}`),
    );
  }

  /** Records an error (written within a second). */
  report(r: ErrorReport): void {
    const mapped = r.stack ? this.mapper.mapStack(r.worker, r.stack) : null;
    const location = mapped?.location ?? null;
    const fingerprint = fingerprintOf(r, location);
    this.onReport(r, fingerprint);
    const pending = this.batches.pending;
    let p = pending.get(fingerprint);
    if (!p) {
      p = {
        group: {
          fingerprint,
          function: r.function,
          kind: r.kind,
          name: r.name,
          message: r.message.slice(0, 2000),
          location,
          count: 0,
          firstSeen: r.at,
          lastSeen: r.at,
        },
        events: [],
      };
      pending.set(fingerprint, p);
    }
    p.group.count += 1;
    if (r.at >= p.group.lastSeen) {
      // The group shows its latest occurrence's message.
      p.group.lastSeen = r.at;
      p.group.message = r.message.slice(0, 2000);
    }
    if (r.at < p.group.firstSeen) p.group.firstSeen = r.at;
    if (p.events.length < EVENTS_PER_FLUSH) p.events.push({ ...r, mappedStack: mapped?.stack ?? r.stack });
  }

  /** Writes what is pending; resolves when it is in the database. */
  flush(): Promise<void> {
    return this.batches.flush();
  }

  private async write(pending: Map<string, Pending>): Promise<void> {
    const batch = [...pending.values()];
    // Statement by statement, no transaction: each is atomic, and the embedded PGlite has one session.
    for (const { group: g, events } of batch) {
      await this.sql`
        insert into workyard.error_groups (fingerprint, function_name, kind, name, message, location, count, first_seen, last_seen)
        values (${g.fingerprint}, ${g.function}, ${g.kind}, ${g.name}, ${g.message}, ${g.location}, ${g.count}, ${g.firstSeen}, ${g.lastSeen})
        on conflict (fingerprint) do update set
          count = error_groups.count + excluded.count,
          first_seen = least(error_groups.first_seen, excluded.first_seen),
          last_seen = greatest(error_groups.last_seen, excluded.last_seen),
          message = excluded.message, location = excluded.location`;
      for (const e of events) {
        await this.sql`
          insert into workyard.error_events (fingerprint, occurred_at, function_name, request_id, method, path, status, cron, message, stack)
          values (${g.fingerprint}, ${e.at}, ${e.function}, ${e.requestId}, ${e.method ?? null}, ${e.path ?? null}, ${e.status ?? null},
                  ${e.cron ?? null}, ${e.message.slice(0, 2000)}, ${e.mappedStack?.slice(0, 20_000) ?? null})`;
      }
    }
  }

  /** The groups seen most recently, each with its latest event. */
  async recent(limit = 20, fn?: string): Promise<ErrorGroup[]> {
    await this.flush();
    const rows = await this.sql<
      {
        fingerprint: string;
        function_name: string;
        kind: ErrorKind;
        name: string;
        message: string;
        location: string | null;
        count: string;
        first_seen: Date;
        last_seen: Date;
        request_id: string | null;
        status: number | null;
        method: string | null;
        path: string | null;
        cron: string | null;
        stack: string | null;
        occurred_at: Date | null;
      }[]
    >`
      select g.*, e.request_id, e.status, e.method, e.path, e.cron, e.stack, e.occurred_at
      from workyard.error_groups g
      left join lateral (select * from workyard.error_events e where e.fingerprint = g.fingerprint order by occurred_at desc, id desc limit 1) e on true
      where ${fn === undefined} or g.function_name = ${fn ?? ""}
      order by g.last_seen desc limit ${limit}`;
    return rows.map((r) => ({
      fingerprint: r.fingerprint,
      function: r.function_name,
      kind: r.kind,
      name: r.name,
      message: r.message,
      location: r.location,
      count: Number(r.count),
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      latest: r.occurred_at
        ? { requestId: r.request_id, status: r.status, method: r.method, path: r.path, cron: r.cron, stack: r.stack, at: r.occurred_at }
        : null,
    }));
  }

  /** Deletes events older than `days`, keeps at most `perGroup` events a group, and drops groups not seen for `days`. */
  async prune(days: number, perGroup = 100): Promise<void> {
    await this.sql`delete from workyard.error_events where occurred_at < now() - make_interval(days => ${days})`;
    await this.sql`
      delete from workyard.error_events e using (
        select id from (select id, row_number() over (partition by fingerprint order by occurred_at desc, id desc) as n from workyard.error_events) ranked
        where n > ${perGroup}) old
      where e.id = old.id`;
    await this.sql`delete from workyard.error_groups where last_seen < now() - make_interval(days => ${days})`;
  }

  stop(): Promise<void> {
    return this.batches.stop();
  }
}
