/**
 * The database rows: one-row reads by primary key (`GET /:id` → `select id, name from bench_items where
 * id = $1`) served by the same Hono handler (db-read/items.ts) four ways, to measure the design target
 * "database read endpoint >= 1.0x the same handler on Node with a persistent postgres.js pool, through the
 * same PgBouncer", what the function host's pool buys, and what the pooler buys:
 *   - workerd through the gateway, the function in its host object with a pool (what `npm start` does for a
 *     function that declares DATABASE_URL: lib/workers/function-host.ts), via PgBouncer
 *   - workerd through the gateway, a postgres.js client per request (db_pool_size = 0, in the gateway's
 *     isolate: the fastest per-request path), via PgBouncer
 *   - Node (@hono/node-server), one persistent pool (max 10, prepare false), via PgBouncer
 *   - workerd through the gateway, a client per request, straight to PostgreSQL
 *   - Deno (Deno.serve, lib/deno/bench-server.ts) running the Node row's module as it is (the same pool), via
 *     PgBouncer: for information, what a user who picks Deno gets (issue #21)
 * Each scenario gets its own scratch database (seeded with the same rows) and its own PgBouncer started by
 * `startPgbouncer` with the settings `npm start` uses; its stop() ends them and drops the database, also when
 * starting fails halfway. The database is the one DATABASE_URL names (from the environment or .env) or,
 * without it, postgres://postgres@127.0.0.1:5432/postgres when that answers; otherwise the rows are skipped.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import postgres from "postgres";
import type { Sql } from "postgres";
import { freePort } from "../runtime/listen-socket.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { buildBenchProjectOnce, Teardown } from "./project.ts";
import { findPgbouncer, INSTALL_HINT, newClientPassword, startPgbouncer } from "../data/pgbouncer.ts";
import { redactUrl } from "../common/redact.ts";
import { ITEMS_TABLE } from "./db-read/items.ts";
import type { Comparison, RunningScenario, Scenario } from "./scenario.ts";
import { serveOnDeno, serveOnNode, serveWorkerd } from "./servers.ts";
import { DB_LISTEN_URL_VAR } from "../../shared/names.ts";
import { findOnPath } from "../common/find-on-path.ts";
import { pgbenchLoad } from "./limits.ts";

export const DB_GATEWAY = "db read via gateway (workerd host pool, PgBouncer)";
export const DB_PER_REQUEST = "db read via gateway (workerd, connection per request, PgBouncer)";
export const DB_NODE = "db read on Node (postgres.js pool, PgBouncer)";
export const DB_DIRECT = "db read via gateway (workerd, direct to PostgreSQL)";
export const DB_DENO = "db read on Deno (postgres.js pool, PgBouncer)";
export const DB_CACHED = "db read via gateway, CACHED (workerd host pool read cache)";
export const DB_WRITE = "db write via gateway (workerd host pool, read cache on: each write tells the other hosts)";
export const DB_WRITE_NO_CACHE = "db write via gateway (workerd host pool, WORKYARD_DB_CACHE=off)";
export const DB_LIMIT = "db read, the machine's limit: pgbench, the same query through PgBouncer (no HTTP)";

/** The function's name in the bench's project: served at /db-read. */
const FN = "db-read";
/** The same function with a connection per request, in the gateway's isolate. */
const PER_REQUEST_FN = "db-read-per-request";
const PER_REQUEST_TOML = `# Written by the bench: db-read with a connection per request, in the gateway's isolate.
[secrets]
required = ["DATABASE_URL"]

[workyard]
isolate = false
db_pool_size = 0
`;
/** Rows in the scratch table; requests ask for ids 1..ITEMS. */
const ITEMS = 1000;
const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres";
/** Scratch databases are `<prefix><pid>_<random>`; the pid lets a later run drop what a killed run left. */
const SCRATCH_PREFIX = "workyard_bench_";
const fixture = fileURLToPath(new URL("./db-read/", import.meta.url));

/**
 * A running scenario that would rather spread its requests over the table: `requestPath()` is a fresh path
 * with a random id. The runner does not use it yet (load.ts loads `url` only); see the report of this change.
 */
export interface RandomPathScenario extends RunningScenario {
  requestPath(): string;
}

export interface DatabaseBenchOptions {
  paths: ProjectPaths;
  /** Each line workerd, PgBouncer and the Node server print. */
  onLine: (source: string, line: string) => void;
  /** The bench's own messages (why the rows are skipped, builds). */
  log: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

const quiet = { onnotice: () => {} };
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** DATABASE_URL from the environment, else from the project's .env (read, not loaded into process.env). */
function configuredDatabaseUrl(paths: ProjectPaths, env: NodeJS.ProcessEnv): string | undefined {
  if (env.DATABASE_URL) return env.DATABASE_URL;
  const file = join(paths.root, ".env");
  return existsSync(file) ? parseEnv(readFileSync(file, "utf8")).DATABASE_URL || undefined : undefined;
}

function onLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "" || host === "localhost" || host === "[::1]" || host.startsWith("127.") || host.startsWith("/");
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function dropDatabase(sql: Sql, name: string): Promise<void> {
  try {
    // FORCE (PostgreSQL 13+) ends connections still open to it, e.g. a killed run's.
    await sql.unsafe(`drop database if exists ${quoteIdent(name)} with (force)`);
  } catch (err) {
    if ((err as { code?: string }).code !== "42601") throw err; // syntax error: an older server
    await sql.unsafe(`drop database if exists ${quoteIdent(name)}`);
  }
}

/** Drops scratch databases of bench runs that died without cleaning up (their pid is gone; loopback only). */
async function dropLeftovers(sql: Sql, url: string, log: (line: string) => void): Promise<void> {
  if (!onLoopback(url)) return;
  const rows = await sql<{ datname: string }[]>`select datname from pg_database where datname like ${`${SCRATCH_PREFIX}%`}`;
  for (const { datname } of rows) {
    const pid = Number(/^workyard_bench_(\d+)_/.exec(datname)?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    await dropDatabase(sql, datname).then(
      () => log(`dropped ${datname}, left by an earlier bench run`),
      (err: unknown) => log(`could not drop ${datname}, left by an earlier bench run: ${message(err)}`),
    );
  }
}

/** The admin URL to use, or why there is none. */
export async function findPostgres(
  paths: ProjectPaths,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<{ url: string } | { skip: string }> {
  if (!findPgbouncer(env)) return { skip: INSTALL_HINT };
  const configured = configuredDatabaseUrl(paths, env);
  const url = configured ?? DEFAULT_DATABASE_URL;
  let sql: Sql;
  try {
    sql = postgres(url, { max: 1, connect_timeout: 3, ...quiet });
  } catch (err) {
    return { skip: `DATABASE_URL is not usable: ${message(err)}` };
  }
  try {
    const [role] = await sql<{ name: string; may: boolean }[]>`
      select rolname as name, rolcreatedb or rolsuper as may from pg_roles where rolname = current_user`;
    if (!role?.may)
      return { skip: `the user "${role?.name}" at ${redactUrl(url)} may not create databases (the bench seeds a scratch one)` };
    await dropLeftovers(sql, url, log);
    return { url };
  } catch (err) {
    return {
      skip: configured
        ? `PostgreSQL at DATABASE_URL (${redactUrl(url)}) does not answer: ${message(err)}`
        : `DATABASE_URL is not set and no PostgreSQL answers at ${DEFAULT_DATABASE_URL}: ${message(err)}`,
    };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Creates a database, seeds `bench_items` with ITEMS rows and returns its URL and how to drop it. */
export async function createScratchDatabase(adminUrl: string): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${SCRATCH_PREFIX}${process.pid}_${randomBytes(4).toString("hex")}`;
  const withAdmin = async (work: (sql: Sql) => Promise<unknown>) => {
    const sql = postgres(adminUrl, { max: 1, connect_timeout: 5, ...quiet });
    try {
      await work(sql);
    } finally {
      await sql.end({ timeout: 1 });
    }
  };
  await withAdmin((sql) => sql.unsafe(`create database ${quoteIdent(name)}`));
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const drop = () => withAdmin((sql) => dropDatabase(sql, name));
  try {
    const sql = postgres(url, { max: 1, connect_timeout: 5, ...quiet });
    try {
      await sql.unsafe(`create table ${ITEMS_TABLE} (id int primary key, name text not null)`);
      await sql.unsafe(`insert into ${ITEMS_TABLE} (id, name) select i, 'item ' || i from generate_series(1, ${ITEMS}) as i`);
      await sql.unsafe(`analyze ${ITEMS_TABLE}`);
    } finally {
      await sql.end({ timeout: 1 });
    }
  } catch (err) {
    await drop();
    throw err;
  }
  return { name, url, drop };
}

/**
 * Starts the host's read cache: its first cached() read opens the notification connection, and the cache serves
 * once a notification has come back on it (milliseconds; the second is to spare, and the run's warm-up follows).
 */
async function startReadCache(url: string): Promise<void> {
  const res = await fetch(url);
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`the cached read answered ${res.status}`);
  await new Promise((r) => setTimeout(r, 1000));
}

/** The database scenarios and their ratio rows; no scenarios (with the reason logged) when there is no PostgreSQL. */
export async function databaseBench({
  paths,
  onLine,
  log,
  env = process.env,
}: DatabaseBenchOptions): Promise<{ scenarios: Scenario[]; comparisons: Comparison[] }> {
  const comparisons: Comparison[] = [
    // The design's target for an uncached read (DESIGN.md, Targets): 0.7x of Node with a persistent pool.
    { name: "db read: gateway / Node", a: DB_GATEWAY, b: DB_NODE, target: 0.7 },
    { name: "db read: host pool / connection per request", a: DB_GATEWAY, b: DB_PER_REQUEST },
    { name: "db read: PgBouncer / direct (per request)", a: DB_PER_REQUEST, b: DB_DIRECT },
    { name: "db read: gateway / Deno", a: DB_GATEWAY, b: DB_DENO },
    { name: "db read: Deno / Node", a: DB_DENO, b: DB_NODE },
    { name: "db read: gateway / machine's limit", a: DB_GATEWAY, b: DB_LIMIT },
    { name: "db write: read cache on / off", a: DB_WRITE, b: DB_WRITE_NO_CACHE },
    { name: "db read: Node / machine's limit", a: DB_NODE, b: DB_LIMIT },
    // Issue #23's target for a cached read: 2.0x the same handler on Node, uncached. Rows labelled CACHED.
    { name: "db read CACHED: gateway cached / Node uncached", a: DB_CACHED, b: DB_NODE, target: 2.0 },
    { name: "db read CACHED: gateway cached / gateway uncached", a: DB_CACHED, b: DB_GATEWAY },
  ];
  const found = await findPostgres(paths, env, log);
  if ("skip" in found) {
    log(`database rows skipped: ${found.skip}`);
    return { scenarios: [], comparisons };
  }
  const adminUrl = found.url;

  const buildOnce = buildBenchProjectOnce(paths, FN, fixture, log, [{ name: PER_REQUEST_FN, wranglerToml: PER_REQUEST_TOML }]);

  /** A scenario: a scratch database, PgBouncer in front of it unless `pooled` is false, then `serve`. */
  function scenario(
    name: string,
    pooled: boolean,
    serve: (databaseUrl: string, listenUrl: string) => Promise<RunningScenario>,
    prefix: string,
  ): Scenario {
    return {
      name,
      async start() {
        const teardown = new Teardown();
        try {
          const scratch = await createScratchDatabase(adminUrl);
          teardown.add(scratch.drop);
          let databaseUrl = scratch.url;
          let listenUrl = scratch.url;
          if (pooled) {
            const dir = join(paths.work, "bench", `pgbouncer-${process.pid}-${randomBytes(4).toString("hex")}`);
            // Also when the process exits without stopping this scenario (a forced quit).
            const removeOnExit = () => rmSync(dir, { recursive: true, force: true });
            process.once("exit", removeOnExit);
            teardown.add(async () => {
              process.off("exit", removeOnExit);
              await rm(dir, { recursive: true, force: true });
            });
            const settings = { databaseUrl: scratch.url, port: await freePort(), dir, clientPassword: newClientPassword() };
            const pooler = await startPgbouncer(settings, (l) => onLine("pgbouncer", l), env);
            teardown.add(() => pooler.stop());
            databaseUrl = pooler.url;
            listenUrl = pooler.listenUrl;
          }
          const running = await serve(databaseUrl, listenUrl);
          teardown.add(() => running.stop());
          // What the server says of itself (its URL, request, own load) as it is; stopping also undoes the rest.
          const started: RandomPathScenario = {
            ...running,
            requestPath: () => `${prefix}/${1 + Math.floor(Math.random() * ITEMS)}`,
            stop: () => teardown.run(),
          };
          return started;
        } catch (err) {
          await teardown.run().catch((cleanupErr: unknown) => log(`  cleaning up after a failed start: ${message(cleanupErr)}`));
          throw err;
        }
      },
    };
  }

  // A fixed id while load.ts loads one URL; every setup reads the same row of the same table.
  const id = ITEMS / 2;
  const viaGateway = async (databaseUrl: string, label: string, name = FN, { listenUrl = "", path = `${id}` } = {}) => {
    const built = await buildOnce();
    const fn = built.manifest.functions.find((f) => f.name === name);
    if (!fn) throw new Error(`the bench's release ${built.manifest.id} has no "${name}" function`);
    // As the supervisor does: workerd sees the internal token and the secrets the functions declare, nothing else.
    const secrets: Record<string, string> = {};
    for (const secret of built.manifest.functions.flatMap((f) => f.secrets)) {
      if (secret !== "DATABASE_URL") throw new Error(`the bench's ${FN} function declares a secret it cannot set: ${secret}`);
      secrets[secret] = databaseUrl;
    }
    // As npm start does: the read cache listens where sessions work (PgBouncer's session-pooled alias).
    const env = { ...secrets, [DB_LISTEN_URL_VAR]: listenUrl };
    return serveWorkerd({ configDir: built.releaseDir, path: `${fn.route}/${path}`, env, onLine: (l) => onLine(label, l) });
  };

  const gateway = scenario(DB_GATEWAY, true, (url) => viaGateway(url, "workerd db"), `/${FN}`);
  const perRequest = scenario(
    DB_PER_REQUEST,
    true,
    (url) => viaGateway(url, "workerd db per request", PER_REQUEST_FN),
    `/${PER_REQUEST_FN}`,
  );
  const node = scenario(
    DB_NODE,
    true,
    (url) =>
      serveOnNode({
        modulePath: join(fixture, "node.ts"),
        // On the command line, as for hello: this PgBouncer's client password is random and lives as long as it.
        vars: { DATABASE_URL: url },
        path: `/${id}`,
        cwd: paths.root,
        onLine: (l) => onLine("node db", l),
      }),
    "",
  );
  const deno = scenario(
    DB_DENO,
    true,
    (url) =>
      serveOnDeno({
        paths,
        modulePath: join(fixture, "node.ts"),
        vars: { DATABASE_URL: url },
        path: `/${id}`,
        onLine: (l) => onLine("deno db", l),
      }),
    "",
  );
  const direct = scenario(DB_DIRECT, false, (url) => viaGateway(url, "workerd db direct", PER_REQUEST_FN), `/${PER_REQUEST_FN}`);
  const cachedRead = scenario(
    DB_CACHED,
    true,
    async (url, listenUrl) => {
      const running = await viaGateway(url, "workerd db cached", FN, { listenUrl, path: `cached/${id}` });
      await startReadCache(running.url);
      return running;
    },
    `/${FN}/cached`,
  );
  const write =
    (listen: boolean) =>
    async (url: string, listenUrl: string): Promise<RunningScenario> => ({
      ...(await viaGateway(url, "workerd db write", FN, { listenUrl: listen ? listenUrl : "" })),
      request: { method: "POST" },
    });
  const writes = [scenario(DB_WRITE, true, write(true), `/${FN}`), scenario(DB_WRITE_NO_CACHE, true, write(false), `/${FN}`)];
  const scenarios = [gateway, perRequest, node, deno, direct, cachedRead, ...writes];
  if (findOnPath("pgbench")) {
    const query = `select id, name from ${ITEMS_TABLE} where id = :id`;
    const dir = join(paths.work, "bench");
    scenarios.push(
      scenario(DB_LIMIT, true, async (url) => ({ url: "", load: pgbenchLoad(url, query, id, dir), stop: async () => {} }), ""),
    );
  } else log(`database row "${DB_LIMIT}" skipped: pgbench is not installed (apt-get install -y postgresql-client)`);
  return { scenarios, comparisons };
}
