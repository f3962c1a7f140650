/**
 * A function host's read cache, as Cloudflare's Hyperdrive caches reads, with invalidation Hyperdrive does not
 * have: `cached(c, maxAge)` in function code (lib/sdk/db.ts) answers a read from here when an entry is young enough
 * and none of its tables was written since. Writes through any host's pool (observed-pool.ts) drop the entries of
 * their tables here at once and, through a PostgreSQL notification, in every other host: other functions and other
 * workerd processes on the same database.
 *
 * The cache serves entries only while this host listens for those notifications (a connection of its own, to
 * PostgreSQL directly, since LISTEN needs a session). While that connection is down every cached read goes to the
 * database; when it is back, everything cached before is dropped, since a notification may have been lost.
 */
import postgres from "postgres";
import type { PendingQuery, Sql } from "postgres";
import { channel } from "node:diagnostics_channel";
import { ANY_TABLE, DB_CACHE_CHANNEL, DB_CACHE_NOTIFY_CHANNEL } from "../../shared/db-cache-event.ts";
import type { DbCacheEvent, DbCacheInvalidation } from "../../shared/db-cache-event.ts";
import { sendNotification } from "../../sdk/db-cache/notify.ts";
import { observedPool } from "../../sdk/db-cache/observed-pool.ts";
import { ReadCache } from "./read-cache.ts";
import { readNames, statementEffect } from "../../sdk/db-cache/statement.ts";
import type { Effect } from "../../sdk/db-cache/statement.ts";

/** Entries one host keeps, results larger than this are not kept, and the longest max age a read may ask for. */
export const CACHE_LIMITS = { entries: 1000, rows: 1000, maxAgeSeconds: 3600 } as const;

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
  readonly #cache = new ReadCache<Rows>({ maxEntries: CACHE_LIMITS.entries });
  readonly #effects = new Memo<Effect>(500);
  readonly #tables = new Memo<Promise<string[]>>(500);
  readonly #inFlight = new Map<string, { ticket: ReturnType<ReadCache<Rows>["ticket"]>; rows: Promise<Rows> }>();
  readonly #origin = crypto.randomUUID();
  readonly #listenUrl: string;
  readonly #log: (line: string) => void;
  #listener?: Sql;
  #listening = false;
  #probe?: string;
  #pendingSubscribe?: ReturnType<typeof setTimeout>;
  #retry = 0;
  #unreportedRemote = 0;
  // Notifications to send: one in flight at a time, the writes that finish meanwhile go together in the next.
  #queued?: { tables: Set<string> | "all"; sent: Promise<void>; resolve: () => void };
  #sending = false;

  constructor({ pool, listenUrl, log = console.error }: HostCacheOptions) {
    this.#raw = pool;
    this.#listenUrl = listenUrl;
    this.#log = log;
    this.pool = observedPool(
      pool,
      (text) => this.#effect(text),
      (tables, settled) => this.#afterWrite(tables, settled),
    );
  }

  /** Answers `query` (built by `pool`, not yet run) from the cache when an entry is younger than `maxAgeSeconds`. */
  async read(query: PendingQuery<postgres.Row[]>, maxAgeSeconds: number): Promise<Rows> {
    this.#listen();
    let text: string;
    let key: string;
    try {
      text = (query as unknown as { text: string }).text;
      const built = query as unknown as { parameters: unknown[] };
      key = JSON.stringify([text, built.parameters], keyValue);
    } catch {
      return this.#bypass(query); // postgres.js rejects what it cannot build, with its own error
    }
    if (!this.#listening || this.#effect(text).kind !== "none") return this.#bypass(query);
    const maxAgeMs = Math.min(maxAgeSeconds, CACHE_LIMITS.maxAgeSeconds) * 1000;
    const hit = this.#cache.lookup(key, maxAgeMs);
    if (hit) {
      this.#publish({ read: "hit" });
      return hit;
    }
    this.#publish({ read: "miss" });
    // Reads of the same query already on their way, sent since the last write of its tables, answer this one too.
    const pending = this.#inFlight.get(key);
    if (pending && !this.#cache.outdated(pending.ticket, [ANY_TABLE])) return pending.rows;
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
    if (rows.length <= CACHE_LIMITS.rows) this.#cache.store(key, freezeRows(rows), names, ticket);
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
   * The tables a read depends on: what PostgreSQL's plan scans (views resolved to their tables) plus the names
   * after FROM and JOIN in the text (a partitioned table's plan names its partitions, writes name the parent).
   * A plan that calls a function, or that cannot be had, makes the read depend on every table.
   */
  #tablesOf(text: string, query: PendingQuery<postgres.Row[]>): Promise<string[]> {
    let found = this.#tables.get(text);
    if (!found) {
      const parameters = (query as unknown as { parameters: postgres.ParameterOrJSON<never>[] }).parameters;
      found = this.#raw
        .unsafe(`explain (format json) ${text}`, parameters)
        .then((result) => [...new Set([...planRelations(result), ...readNames(text)])])
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
    const told = this.#notify(tables);
    // After a failure that may have come after a commit (a lost connection) the notification goes out on its own:
    // the pool is likely down too, and the caller's error should not wait for it.
    if (settled) await told;
  }

  #invalidate(tables: readonly string[] | "all", origin: DbCacheInvalidation): void {
    this.#cache.invalidate(tables);
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
          await withTimeout(sendNotification(this.#raw, { o: this.#origin, t }), NOTIFY_TIMEOUT_MS);
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

  /**
   * Starts listening for other hosts' writes (once; again after the connection drops). The cache serves entries only
   * once a notification this host sent through its pool has come back on that connection: a LISTEN that succeeds
   * where notifications never arrive (the embedded PGlite, a transaction-pooled address) leaves every read to the
   * database rather than serving rows nobody will ever invalidate.
   */
  #listen(): void {
    if (this.#listener) return;
    this.#listener = postgres(this.#listenUrl, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      fetch_types: false,
      connect_timeout: 5,
      onnotice: () => {},
      onnotify: (_channel: string, payload: string) => this.#onNotification(payload),
      onclose: () => {
        if (this.#listening) this.#log("read cache: the notification connection closed; cached reads go to the database until it is back");
        this.#listening = false; // from now on reads go to the database, until listening again
        this.#probe = undefined;
        this.#again(0);
      },
    });
    this.#subscribe();
  }

  /** Subscribes again after `seconds` (once, however many failures ask for it). */
  #again(seconds: number): void {
    if (this.#pendingSubscribe) return;
    this.#pendingSubscribe = setTimeout(() => {
      this.#pendingSubscribe = undefined;
      this.#subscribe();
    }, seconds * 1000);
  }

  #subscribe(): void {
    const listener = this.#listener as Sql;
    const backoff = () => Math.min(2 ** this.#retry++, 60);
    listener`listen ${listener(DB_CACHE_NOTIFY_CHANNEL)}`.then(
      async () => {
        const probe = crypto.randomUUID();
        this.#probe = probe;
        try {
          await sendNotification(this.#raw, { o: this.#origin, probe });
        } catch {
          // The pool is down: the probe is sent again after the wait below.
        }
        setTimeout(() => {
          if (this.#listening || this.#probe !== probe) return;
          if (this.#retry === 0)
            this.#log(
              "read cache: notifications sent through the pool do not arrive where this function listens (the embedded PGlite has none); cached reads go to the database",
            );
          this.#probe = undefined;
          this.#again(backoff());
        }, 5000);
      },
      (err: Error) => {
        if (this.#retry === 0)
          this.#log(`read cache: cannot listen for invalidations (${err.message}); cached reads go to the database, retrying`);
        this.#again(backoff());
      },
    );
  }

  #onNotification(payload: string): void {
    let message: { o?: unknown; t?: unknown; probe?: unknown };
    try {
      message = JSON.parse(payload) as typeof message;
    } catch {
      this.#invalidate("all", "remote"); // not ours to read: the safe side
      return;
    }
    if (message.probe !== undefined) {
      if (message.o !== this.#origin || message.probe !== this.#probe) return;
      // Notifications arrive: whatever was cached before may have missed one while nobody listened.
      this.#cache.invalidate("all");
      this.#listening = true;
      this.#retry = 0;
      return;
    }
    if (message.o === this.#origin) return; // this host dropped them already, before telling
    const t = message.t;
    this.#invalidate(Array.isArray(t) && t.every((x) => typeof x === "string") ? (t as string[]) : "all", "remote");
  }

  #publish(event: DbCacheEvent): void {
    events.publish(event); // workerd puts it in the invocation's trace for the tail worker
    if (this.#unreportedRemote > 0) {
      // Counted when they arrived, outside any request; reported with the next event, which a request carries.
      events.publish({ invalidated: "remote", count: this.#unreportedRemote } satisfies DbCacheEvent);
      this.#unreportedRemote = 0;
    }
  }
}

/** How long a write waits for its notification to be sent before going on without (and saying so). */
const NOTIFY_TIMEOUT_MS = 5000;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** A parameter as part of a cache key: bigints and bytes have no JSON form of their own. */
function keyValue(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return `\\x${Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  return value;
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

/**
 * Freezes the rows and what they hold, since every request the entry answers shares them. Not postgres.js's own
 * objects the result list points to (its columns, its statement), and not bytes (a typed array cannot be frozen).
 */
function freezeRows<T extends readonly unknown[]>(rows: T): T {
  for (const row of rows) deepFreeze(row);
  return Object.freeze(rows);
}

function deepFreeze(value: unknown): void {
  if (!value || typeof value !== "object" || Object.isFrozen(value) || ArrayBuffer.isView(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}
