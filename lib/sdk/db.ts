/**
 * PostgreSQL for functions, with postgres.js. `app.use(database())` then `const sql = db(c)` in a handler.
 * Served by workyard, a function runs inside a host object that owns a pool (function-host.ts) and `db(c)`
 * is that pool, kept across requests. Anywhere else (Cloudflare, miniflare, a plain `app.request` in a
 * test) the client is made on first use in a request and closed after the response (`waitUntil`), because
 * workerd forbids reusing a plain worker's socket across requests. Settings are the ones that are correct
 * behind PgBouncer transaction pooling: no prepared statements, no type fetch round trip.
 */
import type { Context, MiddlewareHandler } from "hono";
import postgres from "postgres";
import type { Row, Sql } from "postgres";
import { nameClasses } from "./class-names.ts";
import { noBindingsReason } from "./env.ts";
import { ApiError } from "./errors.ts";
import { DB_LISTEN_URL_VAR } from "../shared/names.ts";
import { freezeRows } from "./db-cache/freeze.ts";
import { notifyingClient } from "./db-cache/notify.ts";

nameClasses({ PostgresError: postgres.PostgresError });

export type { Sql };

interface Holder {
  url: string;
  connectTimeoutSeconds: number;
  client?: Sql;
}

/** Where the function host puts its pool in the env it hands the function. */
export const POOL_BINDING = "__workyardPool";

/** Where the function host puts its read cache (lib/workers/db-cache/host-cache.ts). */
export const CACHE_BINDING = "__workyardDbCache";

/** What the host puts at CACHE_BINDING (the class is lib/workers/db-cache/host-cache.ts). */
interface HostReadCache {
  read(strings: TemplateStringsArray, values: readonly unknown[], maxAgeSeconds: number): Promise<readonly Row[]>;
}

/** The longest max age cached() takes, in seconds. */
export const MAX_CACHE_AGE_SECONDS = 3600;

declare module "hono" {
  interface ContextVariableMap {
    database: Holder;
  }
}

export interface DatabaseOptions {
  /** The binding that holds the connection URL. Default `DATABASE_URL` (a secret from the environment). */
  binding?: string;
  /** Seconds to wait for a connection before answering 503. */
  connectTimeoutSeconds?: number;
}

/** Makes `db(c)` available in the handlers after it and closes the connection after each response. */
export const database = ({ binding = "DATABASE_URL", connectTimeoutSeconds = 5 }: DatabaseOptions = {}): MiddlewareHandler =>
  async function database(c, next) {
    const env = c.env as Record<string, unknown> | undefined;
    const pool = env?.[POOL_BINDING] as Sql | undefined;
    if (pool && binding === "DATABASE_URL") {
      // The host's pool: shared, so this middleware never closes it (there is no `finally` on this path).
      c.set("database", { url: "", connectTimeoutSeconds, client: pool });
      return next();
    }
    const url = env?.[binding];
    if (typeof url !== "string" || url === "") {
      console.error(
        noBindingsReason(c.env) ??
          `${binding} is not set: declare it under [secrets] required = ["${binding}"] and set it in the environment`,
      );
      throw new ApiError(500, "This function is misconfigured; see the server log", { code: "misconfigured" });
    }
    const holder: Holder = { url, connectTimeoutSeconds };
    c.set("database", holder);
    try {
      await next();
    } finally {
      if (holder.client) {
        const closing = holder.client.end({ timeout: 5 });
        try {
          c.executionCtx.waitUntil(closing);
        } catch {
          await closing; // no execution context (plain app.request in a test): close before returning
        }
      }
    }
  };

/** A postgres.js client with the settings that are right behind PgBouncer transaction pooling. */
export function pgClient(
  url: string,
  { max, idleSeconds, connectTimeoutSeconds }: { max: number; idleSeconds: number; connectTimeoutSeconds: number },
): Sql {
  return postgres(url, {
    max,
    prepare: false,
    fetch_types: false,
    // No pipelining: behind PgBouncer before 1.21 in transaction mode, a query sent on a connection still busy with
    // another's can lose its answer (PgBouncer lets the server go at the first one's end), and it then never ends.
    // Seen with the read cache's notifications under load (the bench's db write row hung); the pool queues instead.
    max_pipeline: 1,
    connect_timeout: connectTimeoutSeconds,
    idle_timeout: idleSeconds,
    onnotice: () => {},
  });
}

const connect = (url: string, connectTimeoutSeconds: number): Sql => pgClient(url, { max: 1, idleSeconds: 1, connectTimeoutSeconds });

/**
 * A pool of up to `size` connections for a function host. Connections open on demand, idle ones close after
 * a minute, and a connection that breaks (PgBouncer restarted) is replaced on the next query.
 */
export const openPool = (url: string, size: number, connectTimeoutSeconds = 5): Sql =>
  pgClient(url, { max: size, idleSeconds: 60, connectTimeoutSeconds });

/** The request's postgres.js client; connects on first use. */
export function db(c: Context): Sql {
  const holder = c.get("database");
  if (!holder) throw new Error("db(c) needs app.use(database()) before the route");
  holder.client ??= connect(holder.url, holder.connectTimeoutSeconds);
  return holder.client;
}

/**
 * A read that may be answered from the function host's read cache, as Cloudflare's Hyperdrive caches reads:
 * `await cached(c, 30)\`select ... where id = ${id}\`` returns rows no older than 30 seconds and, in this workerd
 * process, never older than a write this function's `db(c)` has acknowledged (other functions and processes drop
 * them when the write's notification arrives: docs/database.md, "The read cache"). The rows are frozen, on every
 * path, since a cached entry's rows are shared with other requests. Where there is no host cache (Cloudflare, Deno, `wrangler dev`, a
 * `database({ binding })` of its own, WORKYARD_DB_CACHE=off), and with a max age of 0, it is a plain query. A
 * statement that writes is never cached; inside `sql.begin` use the transaction's own `sql`.
 */
export function cached(c: Context, maxAgeSeconds: number) {
  if (!(maxAgeSeconds >= 0 && maxAgeSeconds <= MAX_CACHE_AGE_SECONDS))
    throw new TypeError(
      `cached(c, maxAgeSeconds): the max age must be 0 to ${MAX_CACHE_AGE_SECONDS} seconds (got ${maxAgeSeconds}); 0 reads the database`,
    );
  const sql = db(c);
  const env = c.env as Record<string, unknown> | undefined;
  const cache = env?.[CACHE_BINDING] as HostReadCache | undefined;
  const hosted = cache !== undefined && maxAgeSeconds > 0 && sql === env?.[POOL_BINDING];
  return <T extends readonly Row[] = readonly Row[]>(
    strings: TemplateStringsArray,
    ...values: readonly postgres.ParameterOrFragment<never>[]
  ): Promise<T> => {
    const rows = hosted ? cache.read(strings, values, maxAgeSeconds) : (sql(strings, ...values) as unknown as Promise<readonly Row[]>);
    return rows.then(freezeRows) as unknown as Promise<T>;
  };
}

/**
 * A client for work outside a request (a scheduled task): `await withDatabase(env, (sql) => sql\`...\`)`.
 * The connection is closed when `work` is done.
 */
export async function withDatabase<T>(
  env: Record<string, unknown> | undefined,
  work: (sql: Sql) => Promise<T>,
  { binding = "DATABASE_URL", connectTimeoutSeconds = 5 }: DatabaseOptions = {},
): Promise<T> {
  const url = env?.[binding];
  if (typeof url !== "string" || url === "") throw new Error(`${binding} is not set: declare it under [secrets] required and set it`);
  const sql = connect(url, connectTimeoutSeconds);
  try {
    // With the read cache on, the function hosts' caches hear of this work's writes as of their own (db-cache/notify.ts).
    return await work(env?.[DB_LISTEN_URL_VAR] ? notifyingClient(sql) : sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
