/**
 * PgBouncer and the Redis proxy as services of their own (the production systemd units), and the
 * supervisor's side of it: with PGBOUNCER_URL / REDIS_PROXY_URL set, `npm start` uses the one already
 * running instead of starting its own. Settings come from the environment (/etc/workyard/env in production).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { z } from "zod";
import { parseDatabaseUrl, pgbouncerFiles } from "../data/pgbouncer.ts";
import type { PgbouncerSettings } from "../data/pgbouncer.ts";
import { redactUrl } from "../common/redact.ts";
import { asUserError, UserError } from "../common/user-error.ts";
import type { RedisService } from "../redis/service.ts";

const LOOPBACK_HOST = /^(127(\.\d{1,3}){3}|localhost|\[::1\])$/;

function issues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
}

const pgbouncerEnv = z.object({
  DATABASE_URL: z.string({ error: "DATABASE_URL is not set: PgBouncer pools connections to it" }).min(1),
  PGBOUNCER_URL: z
    .string({ error: "PGBOUNCER_URL is not set: it says where PgBouncer listens and the password functions log in with" })
    .min(1),
  PGBOUNCER_POOL_SIZE: z.coerce.number().int().min(1).optional(),
  PGBOUNCER_MAX_CLIENT_CONN: z.coerce.number().int().min(1).optional(),
});

/**
 * PgBouncer's settings from DATABASE_URL (the server it pools) and PGBOUNCER_URL (where it listens, and the
 * client login the functions use: the same user and database as DATABASE_URL, its own password).
 */
export function pgbouncerSettingsFromEnv(env: NodeJS.ProcessEnv, dir: string): PgbouncerSettings {
  const parsed = pgbouncerEnv.safeParse(env);
  if (!parsed.success) throw new UserError(issues(parsed.error));
  const { DATABASE_URL, PGBOUNCER_URL } = parsed.data;
  const server = parseDatabaseUrl(DATABASE_URL);
  let client: URL;
  try {
    client = new URL(PGBOUNCER_URL);
  } catch {
    throw new UserError("PGBOUNCER_URL is not a URL: expected postgres://user:password@127.0.0.1:6432/database");
  }
  const user = decodeURIComponent(client.username);
  const database = decodeURIComponent(client.pathname.replace(/^\//, ""));
  const password = decodeURIComponent(client.password);
  const problems = [
    !LOOPBACK_HOST.test(client.hostname) && `its host must be 127.0.0.1 (PgBouncer listens on loopback only), not "${client.hostname}"`,
    !client.port && "it names no port (e.g. :6432)",
    user !== server.user && `its user must be DATABASE_URL's ("${server.user}"), not "${user}"`,
    database !== server.database && `its database must be DATABASE_URL's ("${server.database}"), not "${database}"`,
    !password && "it has no password (the functions' own, not the database's)",
  ].filter((p): p is string => typeof p === "string");
  if (problems.length > 0) throw new UserError(`PGBOUNCER_URL ${redactUrl(PGBOUNCER_URL)}: ${problems.join("; ")}`);
  return {
    databaseUrl: DATABASE_URL,
    port: Number(client.port),
    dir,
    clientPassword: password,
    poolSize: parsed.data.PGBOUNCER_POOL_SIZE,
    maxClientConnections: parsed.data.PGBOUNCER_MAX_CLIENT_CONN,
  };
}

/** Writes pgbouncer.ini and userlist.txt (mode 0600) into the settings' folder; returns the ini's path. */
export async function writePgbouncerConfig(s: PgbouncerSettings): Promise<string> {
  const { ini, userlist } = pgbouncerFiles(s);
  try {
    await mkdir(s.dir, { recursive: true, mode: 0o700 });
    await writeFile(join(s.dir, "userlist.txt"), userlist, { mode: 0o600 });
    await writeFile(join(s.dir, "pgbouncer.ini"), ini, { mode: 0o600 });
  } catch (err) {
    throw asUserError(err); // the folder the operator named cannot be written
  }
  return join(s.dir, "pgbouncer.ini");
}

/** Waits (bounded) until an already-running PgBouncer at `url` serves a query. */
export async function checkRunningPooler(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sql = postgres(url, { max: 1, prepare: false, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new UserError(
          `PGBOUNCER_URL is set but nothing there serves a query (${redactUrl(url)}: ${(err as Error).message}). ` +
            "Start PgBouncer (systemctl start workyard-pgbouncer), or unset PGBOUNCER_URL to let npm start run its own.",
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
}

const proxyEnv = z.object({
  REDIS_URL: z.string().min(1).optional(),
  REDIS_PROXY_URL: z
    .url({ error: "REDIS_PROXY_URL must be a URL such as http://127.0.0.1:8079" })
    .refine((u) => new URL(u).protocol === "http:" && LOOPBACK_HOST.test(new URL(u).hostname) && new URL(u).port !== "", {
      error: "REDIS_PROXY_URL must be http://127.0.0.1:<port>: the proxy listens on loopback only",
    }),
  REDIS_PROXY_TOKEN: z.string({ error: "REDIS_PROXY_TOKEN is not set: the bearer token functions present to the proxy" }).min(16, {
    error: "REDIS_PROXY_TOKEN is too short: use at least 16 random characters (openssl rand -base64 24)",
  }),
});

export interface ProxySettings {
  redisUrl: string | undefined;
  host: string;
  port: number;
  token: string;
  url: string;
}

/** The standalone Redis proxy's settings: REDIS_URL, REDIS_PROXY_URL (where it listens) and REDIS_PROXY_TOKEN. */
export function proxySettingsFromEnv(env: NodeJS.ProcessEnv): ProxySettings {
  const parsed = proxyEnv.safeParse(env);
  if (!parsed.success) throw new UserError(`Bad Redis proxy settings: ${issues(parsed.error)}`);
  const u = new URL(parsed.data.REDIS_PROXY_URL);
  return {
    redisUrl: parsed.data.REDIS_URL,
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: Number(u.port),
    token: parsed.data.REDIS_PROXY_TOKEN,
    url: `http://${u.host}`,
  };
}

/** The already-running proxy at REDIS_PROXY_URL, checked with a PING; the supervisor binds it and stops nothing. */
export async function attachRunningProxy(env: NodeJS.ProcessEnv, timeoutMs = 10_000): Promise<RedisService> {
  const s = proxySettingsFromEnv(env);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await fetch(s.url, {
      method: "POST",
      headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
      body: JSON.stringify(["PING"]),
      signal: AbortSignal.timeout(2000),
    }).then(
      async (res) => ({ status: res.status, body: await res.text() }),
      (err: unknown) => ({ status: 0, body: (err as Error).message }),
    );
    // 503 means the proxy runs and Redis is down: functions then bypass caches, as with a proxy of our own.
    if (answer.status === 200 || answer.status === 503) {
      return {
        backend: { kind: "redis", label: `the already-running proxy at REDIS_PROXY_URL`, proxyUrl: s.url },
        bindings: { UPSTASH_REDIS_REST_URL: s.url, UPSTASH_REDIS_REST_TOKEN: s.token },
        stop: async () => {},
      };
    }
    if (answer.status === 401)
      throw new UserError(`The Redis proxy at ${s.url} refused REDIS_PROXY_TOKEN: set the same token for the proxy and for npm start`);
    if (Date.now() > deadline) {
      throw new UserError(
        `REDIS_PROXY_URL is set but no Redis proxy answers at ${s.url} (${answer.status || answer.body}). ` +
          "Start it (systemctl start workyard-redis-proxy, or npm run redis-proxy), or unset REDIS_PROXY_URL to let npm start run its own.",
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
