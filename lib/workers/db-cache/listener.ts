/**
 * A host's ear for other hosts' writes: a connection of its own that LISTENs on the notify channel (LISTEN needs a
 * session: PgBouncer's session-pooled alias, or PostgreSQL itself). It counts as listening only once a probe this
 * host sent through its pool has come back on it, and again every PROBE_EVERY_MS: a LISTEN that succeeds where
 * notifications never arrive (the embedded PGlite, a transaction-pooled address) or a connection that died without
 * closing (a half-open socket) stops the cache from serving instead of serving rows nobody will ever invalidate.
 */
import postgres from "postgres";
import type { Sql } from "postgres";
import { ANY_TABLE, DB_CACHE_NOTIFY_CHANNEL } from "../../shared/db-cache-event.ts";
import type { CacheNotification } from "../../sdk/db-cache/notify.ts";

/** How long a probe may take to come back, and how often one is sent while listening. */
const PROBE_TIMEOUT_MS = 5000;
const PROBE_EVERY_MS = 30_000;

export interface ListenerOptions {
  url: string;
  /** This host's origin: its own notifications are skipped (it acted on them before sending). */
  origin: string;
  /** Sends a notification through the host's pool (the probe goes the way writes' notifications go). */
  send(message: CacheNotification): Promise<void>;
  /** Another host wrote these tables ("all": every table, or a notification this host cannot read). */
  onWrite(tables: readonly string[] | "all"): void;
  /** Listening (again): whatever was cached before may have missed a notification. */
  onListening(): void;
  log(line: string): void;
}

export class InvalidationListener {
  #listening = false;
  #sql?: Sql;
  /** The connection a LISTEN succeeded on: only its close starts a reconnect (a failed attempt retries on its own). */
  #live?: Sql;
  #probe?: string;
  #retry = 0;
  #timer?: ReturnType<typeof setTimeout>;
  readonly #o: ListenerOptions;

  constructor(options: ListenerOptions) {
    this.#o = options;
  }

  /** True while notifications are known to arrive: only then may the cache serve. */
  get listening(): boolean {
    return this.#listening;
  }

  /** Starts listening, once (the first cached read calls it; it reconnects by itself after). */
  start(): void {
    if (this.#sql) return;
    this.#connect();
  }

  #connect(): void {
    const sql = postgres(this.#o.url, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      fetch_types: false,
      connect_timeout: 5,
      onnotice: () => {},
      onnotify: (_channel: string, payload: string) => this.#heard(payload),
      onclose: () => {
        // A connection that never listened failed its LISTEN, which retries after a wait; an old one was replaced.
        if (this.#sql !== sql || this.#live !== sql) return;
        this.#live = undefined;
        this.#lost("the notification connection closed");
        this.#later(this.#backoff(), () => this.#subscribe());
      },
    });
    this.#sql = sql;
    this.#subscribe();
  }

  #subscribe(): void {
    const sql = this.#sql as Sql;
    sql`listen ${sql(DB_CACHE_NOTIFY_CHANNEL)}`.then(
      () => {
        this.#live = sql;
        this.#sendProbe();
      },
      (err: Error) => {
        if (this.#retry === 0)
          this.#o.log(`read cache: cannot listen for invalidations (${err.message}); cached reads go to the database, retrying`);
        this.#later(this.#backoff(), () => this.#subscribe());
      },
    );
  }

  /** Sends a probe; if it has not come back in time, the connection is taken as dead and replaced. */
  #sendProbe(): void {
    const probe = crypto.randomUUID();
    this.#probe = probe;
    this.#o.send({ o: this.#o.origin, probe }).catch(() => {
      // The pool is down: the probe does not come back, and the wait below handles it.
    });
    this.#later(PROBE_TIMEOUT_MS, () => {
      if (this.#probe !== probe) return;
      this.#probe = undefined;
      if (this.#listening) this.#lost("notifications stopped arriving");
      else if (this.#retry === 0)
        this.#o.log(
          "read cache: notifications sent through the pool do not arrive where this function listens (the embedded PGlite has none); cached reads go to the database",
        );
      // A fresh connection: the old one may be half-open, and a LISTEN on it would never answer.
      const old = this.#sql;
      this.#sql = undefined;
      void old?.end({ timeout: 0 });
      this.#later(this.#backoff(), () => this.#connect());
    });
  }

  #heard(payload: string): void {
    let message: CacheNotification;
    try {
      message = JSON.parse(payload) as CacheNotification;
    } catch {
      return this.#o.onWrite("all"); // not ours to read: the safe side
    }
    if (message.probe !== undefined) {
      if (message.o !== this.#o.origin || message.probe !== this.#probe) return;
      this.#probe = undefined;
      if (!this.#listening) {
        this.#o.onListening();
        this.#listening = true;
      }
      this.#retry = 0;
      this.#later(PROBE_EVERY_MS, () => this.#sendProbe());
      return;
    }
    if (message.o === this.#o.origin) return; // this host dropped them already, before telling
    const t = message.t;
    this.#o.onWrite(Array.isArray(t) && t.every((x) => typeof x === "string") && !t.includes(ANY_TABLE) ? t : "all");
  }

  #lost(why: string): void {
    if (this.#listening) this.#o.log(`read cache: ${why}; cached reads go to the database until notifications arrive again`);
    this.#listening = false; // from now on reads go to the database, until a probe comes back
    this.#probe = undefined;
  }

  /** One pending step at a time (a probe's wait, a retry), so failures asking for several do not pile up. */
  #later(ms: number, step: () => void): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      step();
    }, ms);
  }

  #backoff(): number {
    return Math.min(2 ** this.#retry++, 60) * 1000;
  }
}
