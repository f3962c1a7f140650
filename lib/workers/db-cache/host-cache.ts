/**
 * A function host's read cache, as Cloudflare's Hyperdrive caches reads, with invalidation Hyperdrive does not
 * have: `cached(c, maxAge)` in function code (lib/sdk/db.ts) answers a read from here when an entry is young enough
 * and none of its tables was written since. Writes through any host's pool (observed-pool.ts) drop the entries of
 * their tables here at once and, through a PostgreSQL notification, in every other host: other functions and other
 * workerd processes on the same database.
 *
 * The cache serves entries only while this host hears those notifications (listener.ts). While it does not, every
 * cached read goes to the database; when it does again, everything cached before is dropped, since a notification
 * may have been lost. Writes' notifications go out one at a time (the writes finishing meanwhile go together in the
 * next), and each write waits for its own before its `await` returns.
 */
import type postgres from "postgres";
import type { PendingQuery, Sql } from "postgres";
import { channel } from "node:diagnostics_channel";
import { ANY_TABLE, DB_CACHE_CHANNEL } from "../../shared/db-cache-event.ts";
import type { DbCacheEvent, DbCacheInvalidation } from "../../shared/db-cache-event.ts";
import { sendNotification } from "../../sdk/db-cache/notify.ts";
import { freezeRows } from "../../sdk/db-cache/freeze.ts";
import { observedPool } from "../../sdk/db-cache/observed-pool.ts";
import { InvalidationListener } from "./listener.ts";
import { ReadCache } from "./read-cache.ts";
import { approximateBytes } from "./entry-size.ts";
import { outsideInvocations } from "../trace/capture.ts";
import { readNames, statementEffect } from "../../sdk/db-cache/statement.ts";
import type { Effect } from "../../sdk/db-cache/statement.ts";
import { withDeadline } from "../deadline.ts";

/**
 * What one host keeps: entries, and about how many bytes their rows take together (entry-size.ts; the oldest stored
 * go first past either). Results of more rows or more bytes than an entry may hold, and queries whose text and
 * parameters are longer, are not kept.
 */
export const CACHE_LIMITS = { entries: 1000, bytes: 32 * 1024 * 1024, rows: 1000, entryBytes: 1024 * 1024, keyChars: 8192 } as const;

export interface HostCacheOptions {
  pool: Sql;
  /** A URL where LISTEN works (PostgreSQL directly, not through transaction pooling). */
  listenUrl: string;
  /** Where problems are written (the function's log). */
  log?: (line: string) => void;
}

type Rows = readonly postgres.Row[];

const events = channel(DB_CACHE_CHANNEL);

/** A small map that forgets its oldest key past `max` (memo of texts' effects and tables). */
class Memo<V> extends Map<string, V> {
  readonly max: number;
  constructor(max: number) {
    super();
    this.max = max;
  }
  override set(key: string, value: V): this {
    super.set(key, value);
    if (this.size > this.max) this.delete(this.keys().next().value as string);
    return this;
  }
}

export class HostCache {
  /** The pool function code gets: writes through it invalidate (observed-pool.ts). */
  readonly pool: Sql;
  readonly #raw: Sql;
  readonly #cache = new ReadCache<Rows>({ maxEntries: CACHE_LIMITS.entries, maxBytes: CACHE_LIMITS.bytes });
  readonly #effects = new Memo<Effect>(500);
  readonly #tables = new Memo<Promise<string[]>>(500);
  readonly #inFlight = new Map<string, { ticket: ReturnType<ReadCache<Rows>["ticket"]>; rows: Promise<Rows> }>();
  readonly #origin = crypto.randomUUID();
  readonly #log: (line: string) => void;
  readonly #listener: InvalidationListener;
  #unreportedRemote = 0;
  #listenerStarted = false;
  // Notifications to send: one in flight at a time, the writes that finish meanwhile go together in the next.
  #queued?: { tables: Set<string> | "all"; sent: Promise<void>; resolve: () => void };
  #sending = false;

  constructor({ pool, listenUrl, log = console.error }: HostCacheOptions) {
    this.#raw = pool;
    this.#log = log;
    this.#listener = new InvalidationListener({
      url: listenUrl,
      origin: this.#origin,
      send: (message) => sendNotification(this.#raw, message),
      onWrite: (tables) => this.#invalidate(tables, "remote"),
      onListening: () => this.#invalidate("all", "remote"),
      log,
    });
    this.pool = observedPool(
      pool,
      (text) => this.#effect(text),
      (tables, settled) => this.#afterWrite(tables, settled),
    );
  }

  /**
   * Answers the tagged query `strings`/`values` from the cache when an entry is younger than `maxAgeSeconds`. It is
   * built on the raw pool: a read needs none of the observed pool's work, and a hit never runs it.
   */
  async read(strings: TemplateStringsArray, values: readonly unknown[], maxAgeSeconds: number): Promise<Rows> {
    // Started by the first cached read, but the host's own: what the listener logs is not that request's.
    if (!this.#listenerStarted) {
      this.#listenerStarted = true;
      outsideInvocations(() => this.#listener.start());
    }
    const query = this.#raw(strings, ...(values as postgres.ParameterOrFragment<never>[]));
    let text: string;
    let key: string;
    try {
      const built = (query as unknown as { build(): { text: string; values: unknown[]; oids: number[] } }).build();
      text = built.text;
      // The parameters' types are part of the query: sql.json("x") and "x" are different reads.
      key = JSON.stringify([text, built.oids, built.values.map(keyValue)]);
    } catch {
      return this.#bypass(query); // postgres.js rejects what it cannot build, with its own error
    }
    if (!this.#listener.listening || key.length > CACHE_LIMITS.keyChars || this.#effect(text).kind !== "none") return this.#bypass(query);
    const maxAgeMs = maxAgeSeconds * 1000;
    const hit = this.#cache.lookup(key, maxAgeMs);
    if (hit) {
      this.#publish({ read: "hit" });
      return hit;
    }
    this.#publish({ read: "miss" });
    // Reads of the same query already on their way, sent since the last write of its tables, answer this one too.
    const pending = this.#inFlight.get(key);
    if (pending && Date.now() - pending.ticket.sentAt < maxAgeMs && !this.#cache.outdated(pending.ticket, [ANY_TABLE])) return pending.rows;
    const ticket = this.#cache.ticket();
    const rows = this.#fetch(key, text, query, ticket);
    this.#inFlight.set(key, { ticket, rows });
    try {
      return await rows;
    } finally {
      if (this.#inFlight.get(key)?.rows === rows) this.#inFlight.delete(key);
    }
  }

  async #fetch(key: string, text: string, query: PendingQuery<postgres.Row[]>, ticket: ReturnType<ReadCache<Rows>["ticket"]>) {
    const tables = this.#tablesOf(text, query);
    const rows = (await query) as unknown as postgres.Row[];
    const names = await tables;
    if (rows.length <= CACHE_LIMITS.rows) {
      const bytes = approximateBytes(rows);
      if (bytes <= CACHE_LIMITS.entryBytes) this.#cache.store(key, freezeRows(rows), names, ticket, bytes);
    }
    return rows as Rows;
  }

  #bypass(query: PendingQuery<postgres.Row[]>): Promise<Rows> {
    this.#publish({ read: "bypass" });
    return query as unknown as Promise<Rows>;
  }

  #effect(text: string): Effect {
    let e = this.#effects.get(text);
    if (!e) this.#effects.set(text, (e = statementEffect(text)));
    return e;
  }

  /**
   * The tables a read depends on: what PostgreSQL's plan scans (views resolved to their tables) and the names after
   * FROM and JOIN in the text, then, from the catalog, every table a write to which changes those: the parents and
   * children of a partitioned or inherited table (a write names the parent or one partition, and the plan for one
   * parameter may scan other partitions than the next) and the tables whose deletes or updates cascade into them
   * through a foreign key (ON DELETE CASCADE / SET NULL / SET DEFAULT). A function scan in the plan, or a plan
   * that cannot be had, makes the read depend on every table; functions called outside FROM are not seen.
   */
  #tablesOf(text: string, query: PendingQuery<postgres.Row[]>): Promise<string[]> {
    let found = this.#tables.get(text);
    if (!found) {
      const parameters = (query as unknown as { parameters: postgres.ParameterOrJSON<never>[] }).parameters;
      found = this.#raw
        .unsafe(`explain (format json) ${text}`, parameters)
        .then(async (result) => {
          const names = [...new Set([...planRelations(result), ...readNames(text)])];
          if (names.includes(ANY_TABLE)) return [ANY_TABLE];
          const rows = await this.#raw<{ name: string }[]>`
            with recursive deps(oid) as (
              select c.oid from pg_class c where c.relname in (select jsonb_array_elements_text(${JSON.stringify(names)}::jsonb))
              union
              select con.confrelid from pg_constraint con join deps d on con.conrelid = d.oid
                where con.contype = 'f' and (con.confdeltype in ('c', 'n', 'd') or con.confupdtype in ('c', 'n', 'd'))
              union
              select i.inhparent from pg_inherits i join deps d on i.inhrelid = d.oid
              union
              select i.inhrelid from pg_inherits i join deps d on i.inhparent = d.oid
            )
            select distinct c.relname as name from deps d join pg_class c on c.oid = d.oid`;
          return [...new Set([...names, ...rows.map((r) => r.name)])];
        })
        .catch(() => {
          this.#tables.delete(text); // asked again next time: a failed EXPLAIN may be passing
          return [ANY_TABLE];
        });
      this.#tables.set(text, found);
    }
    return found;
  }

  async #afterWrite(tables: readonly string[] | "all", settled: boolean): Promise<void> {
    this.#invalidate(tables, "local");
    const told = withDeadline(this.#notify(tables), NOTIFY_TIMEOUT_MS).catch((err: Error) =>
      this.#log(`read cache: a write waited ${err.message} for its notification to go out, and went on without it`),
    );
    // After a failure that may have come after a commit (a lost connection) the notification goes out on its own:
    // the pool is likely down too, and the caller's error should not wait for it.
    if (settled) await told;
  }

  #invalidate(tables: readonly string[] | "all", origin: DbCacheInvalidation): void {
    this.#cache.invalidate(tables);
    // DDL (a view replaced, a partition attached) comes as "all": the tables each read depends on are asked again.
    if (tables === "all" || tables.includes(ANY_TABLE)) this.#tables.clear();
    if (origin === "remote") this.#unreportedRemote++;
    else this.#publish({ invalidated: "local", count: 1 });
  }

  /** Tells the other hosts which tables were written; resolves when the notification carrying them was sent. */
  #notify(tables: readonly string[] | "all"): Promise<void> {
    if (!this.#queued) {
      let resolve!: () => void;
      const sent = new Promise<void>((r) => (resolve = r));
      this.#queued = { tables: new Set(), sent, resolve };
    }
    const queued = this.#queued;
    if (tables === "all" || queued.tables === "all") queued.tables = "all";
    else for (const t of tables) queued.tables.add(t);
    if (!this.#sending) void this.#send();
    return queued.sent;
  }

  async #send(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#queued) {
        const batch = this.#queued;
        this.#queued = undefined;
        try {
          // Bounded: a notification that never ends must not hold every later write (they wait for theirs).
          const t = batch.tables === "all" ? ANY_TABLE : [...batch.tables];
          await withDeadline(sendNotification(this.#raw, { o: this.#origin, t }), NOTIFY_TIMEOUT_MS);
        } catch (err) {
          // The write happened; other hosts keep what they cached of it for at most its max age.
          this.#log(
            `read cache: could not tell other hosts about a write (${(err as Error).message}); their cached reads of it last until their max age`,
          );
        }
        batch.resolve();
      }
    } finally {
      this.#sending = false;
    }
  }

  #publish(event: DbCacheEvent): void {
    events.publish(event); // counted into the invocation's record (lib/workers/trace/capture.ts)
    if (this.#unreportedRemote > 0) {
      // Counted when they arrived, outside any request; reported with the next event, which a request carries.
      events.publish({ invalidated: "remote", count: this.#unreportedRemote } satisfies DbCacheEvent);
      this.#unreportedRemote = 0;
    }
  }
}

/** How long a write waits for its notification to be sent before going on without (and saying so). */
const NOTIFY_TIMEOUT_MS = 5000;

/**
 * A parameter as part of a cache key, tagged with its kind so no two values that postgres.js sends differently share
 * one: JSON alone would make NaN, Infinity and an invalid Date null, and a bigint would need a form of its own.
 */
function keyValue(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return `s${value}`;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return `${(typeof value)[0]}${String(value)}`;
  if (value instanceof Date) return `d${value.getTime()}`;
  if (value instanceof Uint8Array) return `x${Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  return `j${JSON.stringify(value)}`;
}

/** Relation names in an EXPLAIN (FORMAT JSON) result; ANY_TABLE if the plan calls a function in FROM. */
function planRelations(result: readonly postgres.Row[]): string[] {
  const cell = result[0] ? Object.values(result[0])[0] : undefined;
  const plan: unknown = typeof cell === "string" ? JSON.parse(cell) : cell;
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== "object") return;
    const o = node as Record<string, unknown>;
    if (typeof o["Relation Name"] === "string") names.add(o["Relation Name"]);
    if (o["Node Type"] === "Function Scan" || o["Node Type"] === "Table Function Scan") names.add(ANY_TABLE);
    for (const v of Object.values(o)) if (v && typeof v === "object") walk(v);
  };
  walk(plan);
  return [...names];
}
