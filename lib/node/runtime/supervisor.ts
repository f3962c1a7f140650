/**
 * The supervisor behind `npm start` (and the integration tests): builds when sources changed (or serves the
 * deployed release), brings up the database (DATABASE_URL through PgBouncer, or the embedded PGlite), starts
 * N workerd processes on one public socket, waits until they answer, restarts what dies, switches releases
 * without dropping a request (`npm run deploy`, `npm run rollback`), and stops everything on request.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { startControl, SwitchError } from "../control/control.ts";
import { build, releaseId, sourceHash } from "../build/build.ts";
import type { BuildResult } from "../build/build.ts";
import { startMigratedEmbeddedPostgres } from "../data/embedded-postgres.ts";
import { keepAlive } from "./keep-alive.ts";
import type { KeepAlive } from "./keep-alive.ts";
import { freePort, heldSocket } from "./listen-socket.ts";
import type { HeldSocket } from "./listen-socket.ts";
import { readManifest } from "../releases/manifest.ts";
import type { Manifest } from "../releases/manifest.ts";
import { migrateUp, pendingMigrations, PLATFORM_MIGRATIONS } from "../data/migrations.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { newClientPassword, startPgbouncer } from "../data/pgbouncer.ts";
import type { Pgbouncer } from "../data/pgbouncer.ts";
import { redactUrl } from "../common/redact.ts";
import { startRedisService } from "../redis/service.ts";
import type { RedisInfo } from "../redis/service.ts";
export type { RedisInfo };
import { Scheduler, jobsOf } from "../cron/scheduler.ts";
import { DB_POOL_MAX_VAR } from "../../shared/names.ts";
import { INTERNAL_TOKEN_VAR } from "../build/serve-config.ts";
import { attachRunningProxy, checkRunningPooler } from "./standalone-services.ts";
import { deployedRelease, previousRelease, pruneReleases, readHistory, recordActivation, releasesKept } from "../releases/history.ts";
import { livenessInterval } from "./liveness.ts";
import { processCount, startGeneration } from "./workerd-pool.ts";
import type { Generation } from "./workerd-pool.ts";
import { checkKeypair, tlsSettings, writeTlsConfig } from "./tls.ts";
import { startCollector } from "../observe/collector.ts";
import type { Collector } from "../observe/collector.ts";
import { logTargetSchema } from "../observe/log-stream.ts";
import { readPoolFigures } from "../observe/pool-stats.ts";
import { removeObserveInfo, writeObserveInfo } from "../observe/run-info.ts";

export interface SupervisorOptions {
  paths: ProjectPaths;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /**
   * The process environment: DATABASE_URL, PGBOUNCER_PORT, REDIS_URL, REDIS_PROXY_PORT, INTERNAL_PORT,
   * WORKYARD_INTERNAL_TOKEN, WORKYARD_SCHEDULER=off, WORKYARD_NODE (this node's name in cron runs),
   * WORKYARD_LOG, WORKYARD_ERROR_RETENTION_DAYS, and the
   * secrets functions declare. PGBOUNCER_URL and REDIS_PROXY_URL (+ REDIS_PROXY_TOKEN) name an already-running PgBouncer and proxy
   * (the production units): then the supervisor uses them and starts none of its own.
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
  | {
      kind: "postgres";
      url: string;
      /** `statsUrl`: PgBouncer's admin console as the stats-only user (SHOW POOLS/STATS/CLIENTS), when it was started here. */
      pooler: { kind: "pgbouncer"; url: string; pid: () => number; external?: boolean; statsUrl?: () => string | undefined };
    };

export interface Backends {
  database: DatabaseBackend;
  redis: RedisInfo;
}

export interface Supervisor {
  /** Where clients go: the HTTPS URL when TLS is on, else the HTTP one. */
  url: string;
  /** The plain-HTTP socket's URL (with TLS on, it answers only redirects to `url`). */
  httpUrl: string;
  /** True when workerd serves HTTPS itself (TLS_CERT and TLS_KEY set). */
  tls: boolean;
  /** The internal socket (loopback): health, scheduled dispatch. Needs `internalToken`. */
  internalUrl: string;
  internalToken: string;
  /** Undefined when WORKYARD_SCHEDULER=off. */
  readonly scheduler?: Scheduler;
  /** The live release (changes with a deploy or rollback). */
  readonly release: ServedRelease;
  /** How many workerd processes serve (WORKERD_PROCESSES, default one per core). */
  processes: number;
  /** The pids of the live processes. */
  pids(): number[];
  /** Receives every workerd process's traces: request log, metrics, errors, usage, dashboard. */
  collector: Collector;
  backends: Backends;
  /** Secrets functions declare that the environment does not set, by function. */
  readonly missingSecrets: Map<string, string[]>;
  stop(): Promise<void>;
}

/** A release as the supervisor serves it: built now, reused, or the deployed one. */
export interface ServedRelease extends BuildResult {
  /** True when it is the release a deploy or rollback made live (not a build of the sources at start). */
  deployed: boolean;
  /** True when the sources have changed since that deployed release was built. */
  stale: boolean;
}

/** What a deploy or rollback did. */
export interface SwitchResult {
  live: string;
  /** What a rollback now returns to. */
  previous?: string;
  from: string;
  /** True when the release was already live (a deploy still applies migrations). */
  unchanged: boolean;
  migrations: string[];
  processes: number;
  ms: number;
  /** Old releases deleted past RELEASES_KEPT. */
  pruned: string[];
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
  const running = opts.env.PGBOUNCER_URL;
  if (running) {
    // An already-running PgBouncer (its own systemd unit): use it, and leave starting and stopping it to systemd.
    await checkRunningPooler(running);
    const pooler = { kind: "pgbouncer" as const, url: running, pid: () => -1, external: true };
    return { backend: { kind: "postgres", url: given, pooler }, functionUrl: running, directUrl: given, stop: async () => {} };
  }
  const port = opts.env.PGBOUNCER_PORT ? Number(opts.env.PGBOUNCER_PORT) : await freePort();
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new StartError(`PGBOUNCER_PORT must be a port number (got "${opts.env.PGBOUNCER_PORT}")`);
  const settings = { databaseUrl: given, port, dir: join(opts.paths.work, "pgbouncer"), clientPassword: newClientPassword(), statsPassword: newClientPassword() };
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
    backend: { kind: "postgres", url: given, pooler: { kind: "pgbouncer", url, pid: () => pooler.current().pid, statsUrl: () => pooler.current().statsUrl } },
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

/**
 * The release `npm start` serves: the one `npm run deploy` / `npm run rollback` made live, when there is one
 * (so a restart serves what was deployed, not whatever the sources are now); otherwise a build of the
 * sources (reused when unchanged).
 */
async function startingRelease(paths: ProjectPaths): Promise<ServedRelease> {
  const started = performance.now();
  const deployed = await deployedRelease(paths);
  if (deployed) {
    const releaseDir = join(paths.releases, deployed);
    const stale = releaseId(await sourceHash(paths)) !== deployed;
    return { releaseDir, manifest: await readManifest(releaseDir), reused: true, ms: performance.now() - started, deployed: true, stale };
  }
  return { ...(await build(paths)), deployed: false, stale: false };
}

/** Builds if needed, starts the backends and workerd, and resolves once the functions answer. */
export async function startSupervisor(opts: SupervisorOptions): Promise<Supervisor> {
  let processes: number;
  let livenessIntervalMs: number;
  let kept: number;
  try {
    processes = processCount(opts.env.WORKERD_PROCESSES);
    livenessIntervalMs = livenessInterval(opts.env.WORKYARD_LIVENESS_INTERVAL_MS);
    kept = releasesKept(opts.env.RELEASES_KEPT);
  } catch (err) {
    throw new StartError((err as Error).message);
  }
  // The build (Wrangler child processes), the database (PGlite in this process, or PgBouncer) and the Redis
  // proxy do not depend on each other: start them at once.
  const [built, started, redisStarted] = await Promise.allSettled([
    startingRelease(opts.paths),
    opts.env.DATABASE_URL ? startRealDatabase(opts, opts.env.DATABASE_URL) : startEmbeddedDatabase(opts),
    opts.env.REDIS_PROXY_URL
      ? attachRunningProxy(opts.env)
      : startRedisService({
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
  let release = built.value;
  const database = started.value;
  const redisService = redisStarted.value;
  if (release.deployed) {
    opts.log(
      `serving deployed release ${release.manifest.id}` +
        (release.stale ? " (the sources have changed since: npm run deploy ships them)" : ""),
    );
  } else {
    opts.log(`${release.reused ? "sources unchanged, using" : "built"} release ${release.manifest.id} (${Math.round(release.ms)} ms)`);
  }

  let collector: Collector;
  try {
    const logTarget = logTargetSchema.parse(opts.env.WORKYARD_LOG || "file");
    const retention = Number(opts.env.WORKYARD_ERROR_RETENTION_DAYS || 14);
    if (!Number.isInteger(retention) || retention < 1) throw new Error(`WORKYARD_ERROR_RETENTION_DAYS must be a whole number of days (got "${opts.env.WORKYARD_ERROR_RETENTION_DAYS}")`);
    const poolStatsUrl = database.backend.kind === "postgres" ? database.backend.pooler.statsUrl : undefined;
    collector = await startCollector({
      releaseDir: release.releaseDir,
      manifest: release.manifest,
      root: opts.paths.root,
      databaseUrl: database.directUrl,
      logTarget,
      logFile: join(opts.paths.logs, "requests.log"),
      errorRetentionDays: retention,
      sources: {
        ...(redisService.stats ? { redisProxy: redisService.stats } : {}),
        ...(poolStatsUrl ? { pool: async () => { const u = poolStatsUrl(); return u ? readPoolFigures(u) : undefined; } } : {}),
      },
      log: opts.log,
    });
  } catch (err) {
    await database.stop();
    await redisService.stop();
    throw new StartError(`The collector did not start: ${(err as Error).message}`, { cause: err });
  }

  // workerd sees only what functions declare as secrets, the internal token and what /readyz checks:
  // nothing else from this environment leaks in (and each function is bound only to what it declares).
  const internalToken = opts.env[INTERNAL_TOKEN_VAR] || randomBytes(24).toString("base64url");
  const workerdEnv = (manifest: Manifest) => {
    // The internal worker's /readyz reaches the pooler and the proxy as functions do.
    const env: Record<string, string> = {
      [INTERNAL_TOKEN_VAR]: internalToken,
      DATABASE_URL: database.functionUrl,
      ...redisService.bindings,
      // The tail worker reports to the collector; the internal worker forwards /metrics and /dashboard to it.
      WORKYARD_COLLECTOR_URL: collector.url,
      WORKYARD_COLLECTOR_TOKEN: collector.token,
      // PGlite runs one query at a time and accepts a limited number of connections: a function host's pool of
      // more than one connection per process would only queue (and, through a deploy, run out of connections).
      ...(database.backend.kind === "embedded-pglite" ? { [DB_POOL_MAX_VAR]: "1" } : {}),
    };
    const missing = new Map<string, string[]>();
    for (const fn of manifest.functions) {
      for (const name of fn.secrets) {
        const value = name === "DATABASE_URL" ? database.functionUrl : (redisService.bindings[name] ?? opts.env[name]);
        if (value === undefined) missing.set(fn.name, [...(missing.get(fn.name) ?? []), name]);
        else env[name] = value;
      }
    }
    return { env, missing };
  };
  const first = workerdEnv(release.manifest);
  let missingSecrets = first.missing;

  let live: Generation;
  let url: string;
  let httpUrl: string;
  let internalUrl: string;
  let publicSocket: HeldSocket | undefined;
  let internalSocket: HeldSocket | undefined;
  let httpsSocket: HeldSocket | undefined;
  let tls: ReturnType<typeof tlsSettings>;
  const generation = async (releaseDir: string, manifest: Manifest, genEnv: Record<string, string>, readiness: "/healthz" | "/readyz") =>
    startGeneration({
      releaseDir,
      processes,
      publicSocket: publicSocket as HeldSocket,
      internalSocket: internalSocket as HeldSocket,
      httpsSocket,
      // With TLS, a config with the https socket, naming the certificate and key files (never copying the key).
      configFile:
        tls && httpsSocket
          ? await writeTlsConfig({ runDir: join(opts.paths.work, "run"), releaseDir, manifest, tls, httpsPort: httpsSocket.port })
          : undefined,
      env: genEnv,
      internalToken,
      readiness,
      // stdout carries the functions' console.log/info/debug, which the collector already has from the traces
      // (with request ids: `npm run logs`); stderr carries console.warn/error and workerd's own messages.
      onLine: (line, i, stream) => {
        if (stream === "stderr") opts.log(`[workerd${processes > 1 ? ` #${i + 1}` : ""}] ${line}`);
      },
      livenessIntervalMs,
      log: opts.log,
      onFatal: opts.onFatal,
    });
  try {
    tls = tlsSettings(opts.env, opts.paths.root);
    if (tls) await checkKeypair(tls);
    // Held for the supervisor's lifetime: every process of every release accepts on these same sockets.
    publicSocket = await heldSocket(opts.host, opts.port);
    internalSocket = await heldSocket("127.0.0.1", Number(opts.env.INTERNAL_PORT ?? 0));
    if (tls) httpsSocket = await heldSocket(opts.host, tls.httpsPort);
    const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
    httpUrl = `http://${host}:${publicSocket.port}`;
    url = httpsSocket ? `https://${host}:${httpsSocket.port}` : httpUrl;
    internalUrl = `http://127.0.0.1:${internalSocket.port}`;
    live = await generation(release.releaseDir, release.manifest, first.env, "/healthz");
  } catch (err) {
    publicSocket?.close();
    internalSocket?.close();
    httpsSocket?.close();
    await collector.stop();
    await database.stop();
    await redisService.stop();
    throw new StartError(`workerd did not start: ${(err as Error).message}`, { cause: err });
  }
  const sockets = [publicSocket, internalSocket, ...(httpsSocket ? [httpsSocket] : [])];
  await recordActivation(opts.paths, release.manifest.id, "start").catch((err: unknown) => opts.log(`could not record the live release: ${(err as Error).message}`));

  let scheduler: Scheduler | undefined;
  const newScheduler = (manifest: Manifest) =>
    new Scheduler({ databaseUrl: database.directUrl, internalUrl, internalToken, jobs: jobsOf(manifest.functions), node: opts.env.WORKYARD_NODE || undefined, log: opts.log });
  let control: Awaited<ReturnType<typeof startControl>> | undefined;

  /** One switch at a time; a second one is refused rather than queued (its author should look first). */
  let switching: string | undefined;
  const activate = async (id: string, how: "deploy" | "rollback"): Promise<SwitchResult> => {
    if (switching) throw new SwitchError(`A ${switching} is in progress; wait for it to finish`);
    switching = how;
    const from = release.manifest.id;
    const startedAt = performance.now();
    try {
      const releaseDir = join(opts.paths.releases, id);
      let manifest: Manifest;
      try {
        manifest = await readManifest(releaseDir);
      } catch (err) {
        throw new SwitchError(`No release ${id} here (${(err as Error).message}); npm run releases lists them`, { cause: err });
      }
      let migrations: string[] = [];
      if (how === "deploy") {
        try {
          migrations = await migrateUp(database.directUrl, opts.paths.migrations);
        } catch (err) {
          throw new SwitchError(`${(err as Error).message}\nRelease ${from} keeps serving.`, { cause: err });
        }
      }
      if (id === from) {
        const history = await recordActivation(opts.paths, id, how);
        return { live: id, previous: previousRelease(history, id), from, unchanged: true, migrations, processes, ms: performance.now() - startedAt, pruned: [] };
      }
      const next = workerdEnv(manifest);
      let started: Generation;
      try {
        started = await generation(releaseDir, manifest, next.env, "/readyz");
      } catch (err) {
        throw new SwitchError(`Release ${id} did not become ready: ${(err as Error).message}\nRelease ${from} keeps serving.`, { cause: err });
      }
      const old = live;
      live = started;
      release = { releaseDir, manifest, reused: true, ms: 0, deployed: true, stale: false };
      collector.useRelease(releaseDir, manifest);
      missingSecrets = next.missing;
      opts.log(`${how}: release ${id} is live (${processes} workerd process${processes === 1 ? "" : "es"}); draining release ${from}`);
      if (scheduler) {
        const replaced = scheduler;
        scheduler = newScheduler(manifest);
        await scheduler.start().catch((err: unknown) => opts.log(`cron: the scheduler for ${id} did not start: ${(err as Error).message}`));
        await replaced.stop();
      }
      await old.drainAndStop();
      const previous = previousRelease(await recordActivation(opts.paths, id, how), id);
      const pruned = await pruneReleases(opts.paths, kept, [id, previous, from]).catch((err: unknown) => {
        opts.log(`could not prune old releases: ${(err as Error).message}`);
        return [];
      });
      return { live: id, previous, from, unchanged: false, migrations, processes, ms: performance.now() - startedAt, pruned };
    } finally {
      switching = undefined;
    }
  };

  if (opts.env.WORKYARD_SCHEDULER !== "off") scheduler = newScheduler(release.manifest);
  try {
    await scheduler?.start();
    control = await startControl(
      {
        scheduler: () => scheduler,
        status: () => ({
          release: release.manifest.id,
          url,
          internalUrl,
          processes: live.members().map((m) => ({ pid: m.pid, probeUrl: m.probeUrl })),
          switching: switching ?? null,
        }),
        deploy: (id) => activate(id, "deploy"),
        async rollback(id) {
          const target = id ?? previousRelease(await readHistory(opts.paths), release.manifest.id);
          if (!target) throw new SwitchError(`Nothing to roll back to: release ${release.manifest.id} is the only one that was live here`);
          return activate(target, "rollback");
        },
      },
      opts.paths.controlInfo,
    );
  } catch (err) {
    await scheduler?.stop();
    await live.stop();
    for (const s of sockets) s.close();
    await collector.stop();
    await database.stop();
    await redisService.stop();
    throw new StartError(`The scheduler did not start: ${(err as Error).message}`, { cause: err });
  }

  await writeObserveInfo(opts.paths, { collectorUrl: collector.url, collectorToken: collector.token, internalUrl, internalToken, pid: process.pid });

  return {
    url,
    httpUrl,
    tls: tls !== undefined,
    internalUrl,
    internalToken,
    get scheduler() {
      return scheduler;
    },
    get release() {
      return release;
    },
    get missingSecrets() {
      return missingSecrets;
    },
    processes,
    pids: () => live.members().map((m) => m.pid),
    collector,
    backends: { database: database.backend, redis: redisService.backend },
    async stop() {
      await control?.stop();
      await scheduler?.stop();
      await live.stop();
      for (const s of sockets) s.close();
      await removeObserveInfo(opts.paths);
      await collector.stop();
      await database.stop();
      await redisService.stop();
    },
  };
}
