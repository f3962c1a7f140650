/**
 * The supervisor behind `npm start` (and the integration tests): builds when sources changed, brings up
 * the database (DATABASE_URL through PgBouncer, or the embedded PGlite), starts workerd on the public
 * socket, waits until it answers, restarts what dies, and stops everything on request.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { startControl } from "./control.ts";
import { build } from "./build.ts";
import type { BuildResult } from "./build.ts";
import { startMigratedEmbeddedPostgres } from "./embedded-postgres.ts";
import { keepAlive } from "./keep-alive.ts";
import type { KeepAlive } from "./keep-alive.ts";
import { freePort, listenSocket } from "./listen-socket.ts";
import { migrateUp, pendingMigrations, PLATFORM_MIGRATIONS } from "./migrations.ts";
import type { ProjectPaths } from "./paths.ts";
import { newClientPassword, startPgbouncer } from "./pgbouncer.ts";
import type { Pgbouncer } from "./pgbouncer.ts";
import { redactUrl } from "./redact.ts";
import { startRedisService } from "./redis-service.ts";
import type { RedisInfo } from "./redis-service.ts";
export type { RedisInfo };
import { Scheduler, jobsOf } from "./scheduler.ts";
import { INTERNAL_TOKEN_VAR } from "./serve-config.ts";
import { startWorkerd, waitUntilAnswering } from "./workerd-process.ts";
import type { WorkerdProcess } from "./workerd-process.ts";

export interface SupervisorOptions {
  paths: ProjectPaths;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /**
   * The process environment: DATABASE_URL, PGBOUNCER_PORT, REDIS_URL, REDIS_PROXY_PORT, INTERNAL_PORT,
   * WORKYARD_INTERNAL_TOKEN, WORKYARD_SCHEDULER=off, and the secrets functions declare.
   */
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Where the embedded database keeps its data; default .workyard/pglite. */
  embeddedDbDir?: string;
  /** Called when a process keeps dying and the supervisor gives up on it. */
  onFatal?: (err: Error) => void;
}

export type DatabaseBackend =
  | { kind: "embedded-pglite"; url: string; dataDir: string }
  | { kind: "postgres"; url: string; pooler: { kind: "pgbouncer"; url: string; pid: () => number } };

export interface Backends {
  database: DatabaseBackend;
  redis: RedisInfo;
}

export interface Supervisor {
  url: string;
  /** The internal socket (loopback): health, scheduled dispatch. Needs `internalToken`. */
  internalUrl: string;
  internalToken: string;
  /** Undefined when WORKYARD_SCHEDULER=off. */
  scheduler?: Scheduler;
  release: BuildResult;
  backends: Backends;
  /** Secrets functions declare that the environment does not set, by function. */
  missingSecrets: Map<string, string[]>;
  stop(): Promise<void>;
}

export class StartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StartError";
  }
}


interface Database {
  backend: DatabaseBackend;
  /** The URL functions use. */
  functionUrl: string;
  /** A direct URL for the platform's own use (migrations, cron runs): session features work there. */
  directUrl: string;
  stop(): Promise<void>;
}

async function startRealDatabase(opts: SupervisorOptions, given: string): Promise<Database> {
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
  const port = opts.env.PGBOUNCER_PORT ? Number(opts.env.PGBOUNCER_PORT) : await freePort();
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new StartError(`PGBOUNCER_PORT must be a port number (got "${opts.env.PGBOUNCER_PORT}")`);
  const settings = { databaseUrl: given, port, dir: join(opts.paths.work, "pgbouncer"), clientPassword: newClientPassword() };
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
    backend: { kind: "postgres", url: given, pooler: { kind: "pgbouncer", url, pid: () => pooler.current().pid } },
    functionUrl: url,
    directUrl: given,
    stop: () => pooler.stop(),
  };
}

async function startEmbeddedDatabase(opts: SupervisorOptions): Promise<Database> {
  const embedded = await startMigratedEmbeddedPostgres(opts.embeddedDbDir ?? opts.paths.embeddedDb, opts.paths.migrations, opts.log);
  return {
    backend: { kind: "embedded-pglite", url: embedded.url, dataDir: embedded.dataDir },
    functionUrl: embedded.url,
    directUrl: embedded.url,
    stop: () => embedded.stop(),
  };
}

/** Builds if needed, starts the backends and workerd, and resolves once the functions answer. */
export async function startSupervisor(opts: SupervisorOptions): Promise<Supervisor> {
  // The build (Wrangler child processes), the database (PGlite in this process, or PgBouncer) and the Redis
  // proxy do not depend on each other: start them at once.
  const [built, started, redisStarted] = await Promise.allSettled([
    build(opts.paths),
    opts.env.DATABASE_URL ? startRealDatabase(opts, opts.env.DATABASE_URL) : startEmbeddedDatabase(opts),
    startRedisService({
      redisUrl: opts.env.REDIS_URL,
      port: Number(opts.env.REDIS_PROXY_PORT ?? 0),
      log: opts.log,
    }),
  ]);
  if (built.status === "rejected" || started.status === "rejected" || redisStarted.status === "rejected") {
    if (started.status === "fulfilled") await started.value.stop();
    if (redisStarted.status === "fulfilled") await redisStarted.value.stop();
    const failed = [built, started, redisStarted].find((r): r is PromiseRejectedResult => r.status === "rejected");
    throw failed?.reason;
  }
  const release = built.value;
  const database = started.value;
  const redisService = redisStarted.value;
  opts.log(`${release.reused ? "sources unchanged, using" : "built"} release ${release.manifest.id} (${Math.round(release.ms)} ms)`);

  // workerd sees only what functions declare as secrets, the internal token and what /readyz checks:
  // nothing else from this environment leaks in (and each function is bound only to what it declares).
  const internalToken = opts.env[INTERNAL_TOKEN_VAR] || randomBytes(24).toString("base64url");
  // The internal worker's /readyz reaches the pooler and the proxy as functions do.
  const env: Record<string, string> = { [INTERNAL_TOKEN_VAR]: internalToken, DATABASE_URL: database.functionUrl, ...redisService.bindings };
  const missingSecrets = new Map<string, string[]>();
  for (const fn of release.manifest.functions) {
    for (const name of fn.secrets) {
      const value = name === "DATABASE_URL" ? database.functionUrl : (redisService.bindings[name] ?? opts.env[name]);
      if (value === undefined) missingSecrets.set(fn.name, [...(missingSecrets.get(fn.name) ?? []), name]);
      else env[name] = value;
    }
  }

  let workerd: KeepAlive<WorkerdProcess>;
  let url: string;
  let internalUrl: string;
  try {
    const first = await listenSocket(opts.host, opts.port);
    const firstInternal = await listenSocket("127.0.0.1", Number(opts.env.INTERNAL_PORT ?? 0));
    const port = first.port;
    const internalPort = firstInternal.port;
    url = `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`;
    internalUrl = `http://127.0.0.1:${internalPort}`;
    const onLine = (line: string) => opts.log(`[workerd] ${line}`);
    const run = async (socket = first, internalSocket = firstInternal) => {
      const proc = startWorkerd({ releaseDir: release.releaseDir, socket, internalSocket, env, onLine });
      try {
        await waitUntilAnswering(url, proc);
      } catch (err) {
        await proc.stop(1000);
        throw err;
      }
      return proc;
    };
    workerd = keepAlive({
      name: "workerd",
      first: await run(),
      restart: async () => run(await listenSocket(opts.host, port), await listenSocket("127.0.0.1", internalPort)),
      log: opts.log,
      onFatal: opts.onFatal,
    });
  } catch (err) {
    await database.stop();
    await redisService.stop();
    throw new StartError(`workerd did not start: ${(err as Error).message}`, { cause: err });
  }

  let scheduler: Scheduler | undefined;
  let control: Awaited<ReturnType<typeof startControl>> | undefined;
  if (opts.env.WORKYARD_SCHEDULER !== "off") {
    scheduler = new Scheduler({ databaseUrl: database.directUrl, internalUrl, internalToken, jobs: jobsOf(release.manifest.functions), log: opts.log });
    try {
      await scheduler.start();
      control = await startControl(scheduler, opts.paths.controlInfo);
    } catch (err) {
      await scheduler.stop();
      await workerd.stop();
      await database.stop();
      await redisService.stop();
      throw new StartError(`The scheduler did not start: ${(err as Error).message}`, { cause: err });
    }
  }

  return {
    url,
    internalUrl,
    internalToken,
    scheduler,
    release,
    backends: { database: database.backend, redis: redisService.backend },
    missingSecrets,
    async stop() {
      await control?.stop();
      await scheduler?.stop();
      await workerd.stop();
      await database.stop();
      await redisService.stop();
    },
  };
}
