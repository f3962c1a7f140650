/**
 * The database a supervisor serves functions from: DATABASE_URL through a PgBouncer it starts and keeps running
 * (or one already running, PGBOUNCER_URL), or the embedded PGlite when DATABASE_URL is not set. The project's
 * migrations must be applied (a start never applies them behind the operator's back); the platform's own are.
 */
import { join } from "node:path";
import type { ProjectPaths } from "../common/paths.ts";
import { redactUrl } from "../common/redact.ts";
import { startMigratedEmbeddedPostgres } from "../data/embedded-postgres.ts";
import { migrateUp, pendingMigrations, PLATFORM_MIGRATIONS } from "../data/migrations.ts";
import { newClientPassword, startPgbouncer } from "../data/pgbouncer.ts";
import type { Pgbouncer } from "../data/pgbouncer.ts";
import { keepAlive } from "./keep-alive.ts";
import type { KeepAlive } from "./keep-alive.ts";
import { freePort } from "./listen-socket.ts";
import { StartError } from "./start-error.ts";
import { checkRunningPooler } from "./standalone-services.ts";

export interface DatabaseOptions {
  paths: ProjectPaths;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Where the embedded database keeps its data; default .workyard/pglite. */
  embeddedDbDir?: string;
  /** Called when PgBouncer keeps dying and the supervisor gives up on it. */
  onFatal?: (err: Error) => void;
}

export type DatabaseBackend =
  | { kind: "embedded-pglite"; url: string; dataDir: string }
  | {
      kind: "postgres";
      url: string;
      /** `statsUrl`: PgBouncer's admin console as the stats-only user (SHOW POOLS/STATS/CLIENTS), when it was started here. */
      pooler: { kind: "pgbouncer"; url: string; pid: () => number; external?: boolean; statsUrl?: () => string | undefined };
    };

export interface Database {
  backend: DatabaseBackend;
  /** The URL functions use. */
  functionUrl: string;
  /** A direct URL for the platform's own use (migrations, cron runs): session features work there. */
  directUrl: string;
  /** Where function hosts LISTEN for the read cache's notifications (a session, not transaction pooling). */
  listenUrl: string;
  stop(): Promise<void>;
}

async function startRealDatabase(opts: DatabaseOptions, given: string): Promise<Database> {
  let pending: string[];
  try {
    pending = await pendingMigrations(given, opts.paths.migrations);
  } catch (err) {
    throw new StartError(`Cannot reach the database at ${redactUrl(given)}: ${(err as Error).message}`, { cause: err });
  }
  if (pending.length > 0) {
    throw new StartError(
      `The database at ${redactUrl(given)} has ${pending.length} pending migration(s): ${pending.join(", ")}.\n` +
        "Apply them with `npm run migrate -- up`, then start again.",
    );
  }
  await migrateUp(given, PLATFORM_MIGRATIONS.dir, PLATFORM_MIGRATIONS.table);
  const running = opts.env.PGBOUNCER_URL;
  if (running) {
    // An already-running PgBouncer (its own systemd unit): use it, and leave starting and stopping it to systemd.
    await checkRunningPooler(running);
    const pooler = { kind: "pgbouncer" as const, url: running, pid: () => -1, external: true };
    return {
      backend: { kind: "postgres", url: given, pooler },
      functionUrl: running,
      directUrl: given,
      listenUrl: given,
      stop: async () => {},
    };
  }
  const port = opts.env.PGBOUNCER_PORT ? Number(opts.env.PGBOUNCER_PORT) : await freePort();
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new StartError(`PGBOUNCER_PORT must be a port number (got "${opts.env.PGBOUNCER_PORT}")`);
  const wait = opts.env.PGBOUNCER_QUERY_WAIT_TIMEOUT;
  if (wait !== undefined && !/^[1-9]\d{0,3}$/.test(wait))
    throw new StartError(`PGBOUNCER_QUERY_WAIT_TIMEOUT must be whole seconds, 1 or more (got "${wait}"): unset it for 5`);
  const settings = {
    databaseUrl: given,
    port,
    ...(wait === undefined ? {} : { queryWaitTimeout: Number(wait) }),
    dir: join(opts.paths.work, "pgbouncer"),
    clientPassword: newClientPassword(),
    statsPassword: newClientPassword(),
  };
  const onLine = (line: string) => opts.log(`[pgbouncer] ${line}`);
  const pooler: KeepAlive<Pgbouncer> = keepAlive({
    name: "PgBouncer",
    first: await startPgbouncer(settings, onLine, opts.env),
    restart: () => startPgbouncer(settings, onLine, opts.env),
    log: opts.log,
    onFatal: opts.onFatal,
  });
  const url = pooler.current().url;
  return {
    backend: {
      kind: "postgres",
      url: given,
      pooler: { kind: "pgbouncer", url, pid: () => pooler.current().pid, statsUrl: () => pooler.current().statsUrl },
    },
    functionUrl: url,
    directUrl: given,
    listenUrl: pooler.current().listenUrl,
    stop: () => pooler.stop(),
  };
}

async function startEmbeddedDatabase(opts: DatabaseOptions): Promise<Database> {
  const embedded = await startMigratedEmbeddedPostgres(opts.embeddedDbDir ?? opts.paths.embeddedDb, opts.paths.migrations, opts.log);
  return {
    backend: { kind: "embedded-pglite", url: embedded.url, dataDir: embedded.dataDir },
    functionUrl: embedded.url,
    directUrl: embedded.url,
    listenUrl: embedded.url,
    stop: () => embedded.stop(),
  };
}

/** Starts the database functions use: DATABASE_URL through PgBouncer, or the embedded PGlite. */
export function startDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.env.DATABASE_URL ? startRealDatabase(opts, opts.env.DATABASE_URL) : startEmbeddedDatabase(opts);
}
