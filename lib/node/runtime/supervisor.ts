/**
 * The supervisor behind `npm start` (and the integration tests): builds when sources changed (or serves the
 * deployed release), brings up the database (DATABASE_URL through PgBouncer, or the embedded PGlite) and the Redis
 * proxy, starts N workerd processes on one public socket, waits until they answer, restarts what dies, switches
 * releases without dropping a request (releases/switch.ts), and stops everything on request. This module is the
 * wiring: each concern lives in its own module, and everything started is stopped by one stack, in reverse order,
 * whether the start fails half-way or stop() is called.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { startControl } from "../control/control.ts";
import { Scheduler, jobsOf } from "../cron/scheduler.ts";
import { startCollector } from "../observe/collector.ts";
import type { Collector } from "../observe/collector.ts";
import { collectorSettings } from "../observe/settings.ts";
import { removeObserveInfo, writeObserveInfo } from "../observe/run-info.ts";
import { recordActivation, releasesKept } from "../releases/history.ts";
import { serveChoiceOf, startingRelease } from "../releases/starting.ts";
import type { ServeChoice } from "../releases/starting.ts";
import type { Manifest } from "../releases/manifest.ts";
import { releaseSwitch } from "../releases/switch.ts";
import type { ServedRelease, Serving } from "../releases/switch.ts";
import { queuePollMs, startQueues } from "../queues/queues.ts";
import type { Queues } from "../queues/queues.ts";
import { startRedisService } from "../redis/service.ts";
import type { RedisInfo, RedisService } from "../redis/service.ts";
import { startDatabase } from "./database.ts";
import type { DatabaseBackend, DatabaseOptions } from "./database.ts";
import { livenessInterval } from "./liveness.ts";
import { holdSockets } from "./sockets.ts";
import { StartError } from "./start-error.ts";
import { attachRunningProxy } from "./standalone-services.ts";
import { checkKeypair, tlsSettings, writeTlsConfig } from "./tls.ts";
import { workerdEnvironment } from "./workerd-env.ts";
import { processCount, startGeneration } from "./workerd-pool.ts";
import type { Generation } from "./workerd-pool.ts";
import { INTERNAL_TOKEN_VAR } from "../../shared/names.ts";

export type { DatabaseBackend, RedisInfo, ServedRelease };
export type { SwitchResult } from "../releases/switch.ts";
export { StartError };

export interface SupervisorOptions extends DatabaseOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /**
   * The process environment: DATABASE_URL, PGBOUNCER_PORT, PGBOUNCER_QUERY_WAIT_TIMEOUT, REDIS_URL, REDIS_PROXY_PORT, INTERNAL_PORT,
   * WORKYARD_INTERNAL_TOKEN, WORKYARD_SCHEDULER=off, WORKYARD_NODE (this node's name in cron runs), WORKYARD_LOG,
   * WORKYARD_ERROR_RETENTION_DAYS, and the secrets functions declare. PGBOUNCER_URL and REDIS_PROXY_URL
   * (+ REDIS_PROXY_TOKEN) name an already-running PgBouncer and proxy (the production units): then the supervisor
   * uses them and starts none of its own.
   */
  env: NodeJS.ProcessEnv;
  /** "sources" serves a build of the sources even after a deploy (npm start -- --sources); default WORKYARD_SERVE's. */
  serve?: ServeChoice;
}

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
  /** The queue service and dispatcher. */
  queues: Queues;
  stop(): Promise<void>;
}

/** A settled start's value, or its failure thrown. */
function fulfilled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}

/** Builds if needed, starts the backends and workerd, and resolves once the functions answer. */
export async function startSupervisor(opts: SupervisorOptions): Promise<Supervisor> {
  let processes: number;
  let livenessIntervalMs: number;
  let kept: number;
  let serve: ServeChoice;
  let pollMs: number;
  try {
    pollMs = queuePollMs(opts.env.WORKYARD_QUEUE_POLL_MS);
    serve = opts.serve ?? serveChoiceOf(opts.env);
    processes = processCount(opts.env.WORKERD_PROCESSES);
    livenessIntervalMs = livenessInterval(opts.env.WORKYARD_LIVENESS_INTERVAL_MS);
    kept = releasesKept(opts.env.RELEASES_KEPT);
  } catch (err) {
    throw new StartError((err as Error).message);
  }
  const owned = new AsyncDisposableStack();
  /** A stop step that says what it stopped, so a stop reads as one and not as a crash. */
  const step = (what: string, stop: () => Promise<unknown>) => async () => {
    const started = performance.now();
    await stop();
    opts.log(`  stopped ${what} (${Math.round(performance.now() - started)} ms)`);
  };
  try {
    // The build (Wrangler child processes), the database (PGlite in this process, or PgBouncer) and the Redis
    // proxy do not depend on each other: start them at once, and own whichever started even if another failed.
    const redisStart: Promise<RedisService> = opts.env.REDIS_PROXY_URL
      ? attachRunningProxy(opts.env)
      : startRedisService({
          redisUrl: opts.env.REDIS_URL,
          port: Number(opts.env.REDIS_PROXY_PORT ?? 0),
          memoryFile: opts.paths.redisMemory,
          log: opts.log,
        });
    const [built, databaseStarted, redisStarted] = await Promise.allSettled([
      startingRelease(opts.paths, serve, opts.log),
      startDatabase(opts),
      redisStart,
    ]);
    if (databaseStarted.status === "fulfilled") {
      const { backend } = databaseStarted.value;
      const what =
        backend.kind === "embedded-pglite" ? "the embedded database" : backend.pooler.external ? "the database connections" : "PgBouncer";
      owned.defer(step(what, () => databaseStarted.value.stop()));
    }
    if (redisStarted.status === "fulfilled") owned.defer(step("the Redis proxy", () => redisStarted.value.stop()));
    const { release: first, notice, activation } = fulfilled(built);
    const database = fulfilled(databaseStarted);
    const redisService = fulfilled(redisStarted);
    for (const line of notice) opts.log(line);

    let queues: Queues;
    try {
      queues = await startQueues({
        databaseUrl: database.directUrl,
        prepare: database.backend.kind !== "embedded-pglite",
        pollMs,
        log: opts.log,
      });
    } catch (err) {
      throw new StartError(`The queue service did not start: ${(err as Error).message}`, { cause: err });
    }
    owned.defer(step("the queue service", () => queues.stop()));

    let collector: Collector;
    try {
      collector = await startCollector(collectorSettings(opts, first, database, redisService, () => queues.metrics()));
    } catch (err) {
      throw new StartError(`The collector did not start: ${(err as Error).message}`, { cause: err });
    }
    owned.defer(step("the collector", () => collector.stop()));

    const internalToken = opts.env[INTERNAL_TOKEN_VAR] || randomBytes(24).toString("base64url");
    const envFor = (manifest: Manifest) =>
      workerdEnvironment({ manifest, env: opts.env, internalToken, database, redis: redisService, collector, queues });
    const tls = tlsSettings(opts.env, opts.paths.root);
    if (tls) await checkKeypair(tls);
    // Held for the supervisor's lifetime: every process of every release accepts on these same sockets.
    const sockets = await holdSockets({
      host: opts.host,
      port: opts.port,
      internalPort: Number(opts.env.INTERNAL_PORT ?? 0),
      httpsPort: tls?.httpsPort,
    });
    owned.defer(() => sockets.close());
    const generation = async (releaseDir: string, manifest: Manifest, readiness: "/healthz" | "/readyz"): Promise<Generation> =>
      startGeneration({
        releaseDir,
        processes,
        publicSocket: sockets.public,
        internalSocket: sockets.internal,
        httpsSocket: sockets.https,
        // With TLS, a config with the https socket, naming the certificate and key files (never copying the key).
        configFile:
          tls && sockets.https
            ? await writeTlsConfig({ runDir: join(opts.paths.work, "run"), releaseDir, manifest, tls, httpsPort: sockets.https.port })
            : undefined,
        env: envFor(manifest).env,
        internalToken,
        readiness,
        // stdout carries the functions' console.log/info/debug, which the collector already has from the traces
        // (with request ids: `npm run logs`); stderr carries console.warn/error and workerd's own messages.
        onLine: (line, i, stream) => {
          if (stream !== "stderr") return;
          opts.log(`[workerd${processes > 1 ? ` #${i + 1}` : ""}] ${line}`);
          collector.workerdLine(line);
        },
        livenessIntervalMs,
        log: opts.log,
        onFatal: opts.onFatal,
      });
    let live: Generation;
    try {
      live = await generation(first.releaseDir, first.manifest, "/healthz");
    } catch (err) {
      throw new StartError(`workerd did not start: ${(err as Error).message}`, { cause: err });
    }
    const serving: Serving = { release: first, live };
    owned.defer(
      step(`workerd (${processes} process${processes === 1 ? "" : "es"}, in-flight requests drained)`, () => serving.live.stop()),
    );
    await recordActivation(opts.paths, first.manifest.id, activation).catch((err: unknown) =>
      opts.log(`could not record the live release: ${(err as Error).message}`),
    );

    const newScheduler = (manifest: Manifest) =>
      new Scheduler({
        databaseUrl: database.directUrl,
        internalUrl: sockets.internalUrl,
        internalToken,
        jobs: jobsOf(manifest.functions),
        functions: manifest.functions.map((fn) => fn.name),
        node: opts.env.WORKYARD_NODE || undefined,
        log: opts.log,
      });
    let scheduler = opts.env.WORKYARD_SCHEDULER === "off" ? undefined : newScheduler(first.manifest);
    owned.defer(async () => {
      const running = scheduler;
      if (running) await step("the cron scheduler (runs in flight finished)", () => running.stop())();
    });
    const switcher = releaseSwitch({
      paths: opts.paths,
      kept,
      processes,
      databaseUrl: database.directUrl,
      serving,
      start: (releaseDir, manifest) => generation(releaseDir, manifest, "/readyz"),
      async onLive(releaseDir, manifest) {
        collector.useRelease(releaseDir, manifest);
        await queues
          .deliver(manifest, { url: sockets.internalUrl, token: internalToken })
          .catch((err: unknown) => opts.log(`queues: the dispatcher for ${manifest.id} did not start: ${(err as Error).message}`));
        if (!scheduler) return;
        const replaced = scheduler;
        scheduler = newScheduler(manifest);
        await scheduler
          .start()
          .catch((err: unknown) => opts.log(`cron: the scheduler for ${manifest.id} did not start: ${(err as Error).message}`));
        await replaced.stop();
      },
      log: opts.log,
    });
    try {
      await queues.deliver(first.manifest, { url: sockets.internalUrl, token: internalToken });
    } catch (err) {
      throw new StartError(`The queue dispatcher did not start: ${(err as Error).message}`, { cause: err });
    }
    owned.defer(step("queue deliveries (batches in flight finished)", () => queues.stopDelivering()));
    try {
      await scheduler?.start();
      const control = await startControl(
        {
          scheduler: () => scheduler,
          status: () => ({
            release: serving.release.manifest.id,
            url: sockets.url,
            internalUrl: sockets.internalUrl,
            processes: serving.live.members().map((m) => ({ pid: m.pid, probeUrl: m.probeUrl })),
            switching: switcher.inProgress() ?? null,
          }),
          deploy: (id) => switcher.deploy(id),
          rollback: (id) => switcher.rollback(id),
        },
        opts.paths.controlInfo,
      );
      owned.defer(() => control.stop());
    } catch (err) {
      throw new StartError(`The scheduler did not start: ${(err as Error).message}`, { cause: err });
    }

    await writeObserveInfo(opts.paths, {
      collectorUrl: collector.url,
      collectorToken: collector.token,
      internalUrl: sockets.internalUrl,
      internalToken,
      pid: process.pid,
    });
    owned.defer(() => removeObserveInfo(opts.paths));

    const stack = owned.move();
    return {
      url: sockets.url,
      httpUrl: sockets.httpUrl,
      tls: tls !== undefined,
      internalUrl: sockets.internalUrl,
      internalToken,
      get scheduler() {
        return scheduler;
      },
      get release() {
        return serving.release;
      },
      get missingSecrets() {
        return envFor(serving.release.manifest).missing;
      },
      processes,
      pids: () => serving.live.members().map((m) => m.pid),
      collector,
      queues,
      backends: { database: database.backend, redis: redisService.backend },
      stop: () => stack.disposeAsync(),
    };
  } catch (err) {
    await owned.disposeAsync().catch((cleanup: unknown) => opts.log(`while stopping after a failed start: ${(cleanup as Error).message}`));
    throw err;
  }
}
