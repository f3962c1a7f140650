/**
 * `npm run dev`: every function on miniflare behind the production gateway (same routes, service bindings,
 * vars and secrets), bundled with esbuild's incremental API and reloaded on save. A save rebuilds only the
 * bundles that contain the saved file, then hands miniflare the new scripts; a build error is printed
 * with its file, line and column and the last good version keeps serving. The database, the bundlers and
 * this process keep running across reloads; miniflare restarts its workerd process with the new scripts.
 */
import { realpathSync } from "node:fs";
import { join, sep } from "node:path";
import { Miniflare } from "miniflare";
import type { MiniflareOptions, WorkerOptions } from "miniflare";
import type { ProjectPaths } from "../common/paths.ts";
import { describeFailure } from "../common/user-error.ts";
import { serviceName } from "../build/serve-config.ts";
import { WORKER_CODE } from "../build/release-inputs.ts";
import { startDevDatabase } from "./database.ts";
import type { DevDatabase, DevDatabaseBackend } from "./database.ts";
import { DEV_VARS_FILE } from "./dev-vars.ts";
import { startDevEndpoints } from "./dev-endpoints.ts";
import { reloadQueue } from "./reload-queue.ts";
import { ensurePortFree } from "./port.ts";
import { startRedisService } from "../redis/service.ts";
import type { RedisInfo, RedisService } from "../redis/service.ts";
import { ForwardLog, runtimeLog } from "./runtime-log.ts";
import { bundleDir, DevSources } from "./sources.ts";
import type { WorkerBundler } from "./bundler.ts";
import { watchSources } from "./watcher.ts";
import type { ChangeBatch } from "./watcher.ts";
import { devWorkers, functionBindings, GATEWAY_WORKER } from "./worker-options.ts";

export interface DevServerOptions {
  paths: ProjectPaths;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** The process environment: DATABASE_URL, REDIS_URL and the secrets functions declare (over .dev.vars). */
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Where the embedded database keeps its data; default .workyard/pglite (shared with `npm start`). */
  embeddedDbDir?: string;
  /** Loopback port of the dev endpoints (scheduled triggers); 0, the default, picks a free one. */
  devPort?: number;
}

/** One reload, as printed. */
export interface ReloadRecord {
  /** Workers whose new version is served ("gateway", "fn-hello"); empty when nothing new is served. */
  workers: string[];
  /** Config and build problems ("functions/hello/index.ts:3:14: ..."); failing workers keep their last good version. */
  errors: string[];
  /** From the save (the file's mtime) until miniflare serves the new version. */
  ms?: number;
  buildMs: number;
  restartMs?: number;
}

export interface DevFunction {
  name: string;
  crons: string[];
  /** Declared secrets nothing sets. */
  missingSecrets: string[];
  /** False while the function has never built: it is not routed until it does. */
  served: boolean;
}

export interface DevServer {
  url: string;
  /** The dev endpoints (loopback): POST {devUrl}/__dev/scheduled/<function>?cron=... */
  devUrl: string;
  database: DevDatabaseBackend;
  redis: RedisInfo;
  functions(): DevFunction[];
  /** Every reload so far, oldest first. */
  reloads: ReloadRecord[];
  stop(): Promise<void>;
}

/** The worker options without the scripts, to tell whether anything but code changed. */
const settingsKey = (workers: WorkerOptions[]) =>
  JSON.stringify(workers, (key, value: unknown) => (key === "contents" ? undefined : value));

/** Starts the database, bundles every function and the gateway, serves them on miniflare and watches for saves. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const { paths, log } = opts;
  await ensurePortFree(opts.host, opts.port);
  const { sources, errors: initialErrors } = await DevSources.load(paths);
  for (const e of initialErrors) log(`${e}\n  (not served until a save fixes it)`);

  // The database (PGlite in this process, or a check of the given server) and the Redis proxy start at once.
  const [db, rd] = await Promise.allSettled([
    startDevDatabase({
      given: opts.env.DATABASE_URL ?? sources.devVars.DATABASE_URL,
      embeddedDir: opts.embeddedDbDir ?? paths.embeddedDb,
      migrations: paths.migrations,
      log,
    }),
    startRedisService({ redisUrl: opts.env.REDIS_URL ?? sources.devVars.REDIS_URL, log }),
  ]);
  if (db.status === "rejected" || rd.status === "rejected") {
    if (db.status === "fulfilled") await db.value.stop();
    if (rd.status === "fulfilled") await rd.value.stop();
    await sources.dispose();
    throw db.status === "rejected" ? db.reason : (rd as PromiseRejectedResult).reason;
  }
  const database: DevDatabase = db.value;
  const redis: RedisService = rd.value;
  const backends = async () => {
    await database.stop();
    await redis.stop();
  };
  const provided = { DATABASE_URL: database.url, ...redis.bindings };

  const missing = new Map<string, string[]>();
  /** The workers for these scripts, with the current config and secrets. */
  const workers = (scripts: Map<string, string>): WorkerOptions[] => {
    missing.clear();
    const functions = sources.functions.map((fn) => {
      const bindings = functionBindings(fn, { provided, env: opts.env, devVars: sources.devVars });
      if (bindings.missing.length > 0) missing.set(fn.name, bindings.missing);
      return { fn, dir: bundleDir(paths, serviceName(fn)), script: scripts.get(serviceName(fn)), bindings };
    });
    const gateway = { dir: bundleDir(paths, GATEWAY_WORKER), script: scripts.get(GATEWAY_WORKER) ?? "", ...sources.gatewaySettings };
    return devWorkers(gateway, functions);
  };

  const shared: Omit<MiniflareOptions, "workers"> = {
    host: opts.host,
    port: opts.port,
    cf: false, // a fixed `request.cf`: no request to Cloudflare for one
    telemetry: { enabled: false },
    log: new ForwardLog(log),
    handleStructuredLogs: runtimeLog(log),
  };
  /** What miniflare serves now. */
  let served = { scripts: sources.scripts(), key: "" };
  let mf: Miniflare;
  let url: string;
  try {
    const initial = workers(served.scripts);
    served.key = settingsKey(initial);
    mf = new Miniflare({ ...shared, workers: initial });
    const ready = await mf.ready;
    url = `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${ready.port}`;
  } catch (err) {
    await backends();
    await sources.dispose();
    throw err;
  }

  const reloads: ReloadRecord[] = [];
  /** Scripts workerd refused to start (a throw at the top level): not tried again until they change. */
  const rejected = new Map<string, string>();
  const functionsDir = realpathSync(paths.functions);
  const rootFiles = new Set([join(sources.root, DEV_VARS_FILE), join(sources.root, "wrangler.toml")]);

  const reload = async (batch: ChangeBatch): Promise<void> => {
    const started = performance.now();
    const errors: string[] = [];
    // Config, secrets and the set of functions are read again when a file that holds them, or a folder, changes.
    const structural = [...batch.changes].some(
      ([file, kind]) => rootFiles.has(file) || file.endsWith(`${sep}wrangler.toml`) || (kind !== "change" && file.startsWith(functionsDir)),
    );
    let fresh: WorkerBundler[] = [];
    if (structural) {
      const before = new Set(sources.functions.map((f) => f.name));
      try {
        fresh = await sources.refresh();
      } catch (err) {
        errors.push(`${(err as Error).message}\n  (still serving the last good config)`);
      }
      for (const name of before) if (!sources.functions.some((f) => f.name === name)) log(`functions/${name} is gone: no longer served`);
    }
    const built = await sources.rebuild([...batch.changes.keys()], fresh);
    errors.push(...built.errors.map((e) => `${e}\n  (still serving the last good version)`));
    for (const e of errors) log(e);

    const scripts = sources.scripts();
    // A bundler made anew (changed flags, or a new set of functions in the gateway's isolate) that failed
    // has no script yet: the last one served stays.
    for (const [worker, script] of served.scripts) if (!scripts.has(worker)) scripts.set(worker, script);
    for (const [worker, script] of scripts) {
      if (rejected.get(worker) !== script) continue;
      const last = served.scripts.get(worker);
      if (last === undefined) scripts.delete(worker);
      else scripts.set(worker, last);
    }
    const next = workers(scripts);
    const key = settingsKey(next);
    const changed = [...scripts.keys()].filter((w) => scripts.get(w) !== served.scripts.get(w));
    const buildMs = Math.round(performance.now() - started);
    if (changed.length === 0 && key === served.key) {
      reloads.push({ workers: [], errors, buildMs });
      return;
    }
    const restartStarted = performance.now();
    try {
      await mf.setOptions({ ...shared, workers: next });
    } catch (err) {
      const names = changed.map((w) => w.replace(/^fn-/, "")).join(", ") || "settings";
      log(
        `the new version (${names}) did not start: ${(err as Error).message}\n  (still serving the last version that did; see the error above)`,
      );
      for (const worker of changed) rejected.set(worker, scripts.get(worker) ?? "");
      await mf.setOptions({ ...shared, workers: workers(served.scripts) });
      reloads.push({ workers: [], errors: [...errors, (err as Error).message], buildMs });
      return;
    }
    served = { scripts, key };
    const restartMs = Math.round(performance.now() - restartStarted);
    const ms = Math.round(Date.now() - batch.savedAt);
    const what = changed.length > 0 ? changed.map((w) => w.replace(/^fn-/, "")).join(", ") : "settings";
    log(`reloaded ${what} in ${ms} ms (build ${buildMs} ms, restart ${restartMs} ms)`);
    reloads.push({ workers: changed, errors, ms, buildMs, restartMs });
  };

  const queue = reloadQueue(reload, (err) => log(`reload failed: ${describeFailure(err)}`));
  const watcher = watchSources({
    paths: [functionsDir, ...WORKER_CODE.map((dir) => realpathSync(join(paths.root, dir))), ...rootFiles],
    onBatch: (batch) => queue.push(batch),
  });
  const functionList = (): DevFunction[] =>
    sources.functions.map((fn) => ({
      name: fn.name,
      crons: fn.config.triggers?.crons ?? [],
      missingSecrets: missing.get(fn.name) ?? [],
      served: served.scripts.has(serviceName(fn)),
    }));
  let endpoints: Awaited<ReturnType<typeof startDevEndpoints>>;
  try {
    endpoints = await startDevEndpoints(
      {
        functions: () => functionList().filter((f) => f.served),
        fireScheduled: (name, cron) =>
          queue.exclusive(async () => {
            const worker = await mf.getWorker(`fn-${name}`);
            const { outcome, noRetry } = await worker.scheduled({ cron, scheduledTime: new Date() });
            return { outcome, noRetry };
          }),
      },
      opts.devPort ?? 0,
    );
    await watcher.ready;
  } catch (err) {
    await watcher.close();
    await mf.dispose();
    await backends();
    await sources.dispose();
    throw err;
  }

  const backend: DevDatabaseBackend =
    database.kind === "postgres"
      ? { kind: database.kind, url: database.url, pending: database.pending }
      : { kind: database.kind, url: database.url, dataDir: database.dataDir };
  return {
    url,
    devUrl: endpoints.url,
    database: backend,
    redis: redis.backend,
    functions: functionList,
    reloads,
    async stop() {
      await watcher.close();
      await endpoints.stop();
      await queue.exclusive(async () => {
        await mf.dispose();
        await sources.dispose();
      });
      await backends();
    },
  };
}
