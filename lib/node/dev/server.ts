/**
 * `npm run dev`: every function on miniflare behind the production gateway (same routes, service bindings,
 * vars and secrets), bundled with esbuild's incremental API and reloaded on save. A save rebuilds only the
 * bundles that contain the saved file, then hands each new bundle to its worker's dev loader, which serves it
 * through workerd's Worker Loader in the same workerd process (loader.ts); a build error is printed with its
 * file, line and column, the last good version keeps serving, and the save that fixes it says so. Only a
 * settings change (a wrangler.toml, .dev.vars, a function added or removed) restarts workerd (setOptions).
 */
import { realpathSync } from "node:fs";
import { join, sep } from "node:path";
import { Miniflare } from "miniflare";
import type { MiniflareOptions, WorkerOptions } from "miniflare";
import type { ProjectPaths } from "../common/paths.ts";
import { describeFailure, UserError } from "../common/user-error.ts";
import { attachRunningProxy } from "../runtime/standalone-services.ts";
import { serviceName } from "../build/serve-config.ts";
import { WORKER_CODE } from "../build/release-inputs.ts";
import { startDevDatabase } from "./database.ts";
import type { DevDatabase, DevDatabaseBackend } from "./database.ts";
import { DEV_VARS_FILE } from "./dev-vars.ts";
import { startDevEndpoints } from "./dev-endpoints.ts";
import { reloadQueue } from "./reload-queue.ts";
import { ensurePortFree } from "./port.ts";
import { activate, devLoaderScript, devToken, devVersion } from "./loader.ts";
import type { DevVersion } from "./loader.ts";
import { startRedisService } from "../redis/service.ts";
import type { RedisInfo, RedisService } from "../redis/service.ts";
import { ForwardLog, runtimeLog } from "./runtime-log.ts";
import { bundleDir, DevSources } from "./sources.ts";
import type { WorkerBundler } from "./bundler.ts";
import { watchSources } from "./watcher.ts";
import type { ChangeBatch } from "./watcher.ts";
import { devWorkers, functionBindings, GATEWAY_WORKER } from "./worker-options.ts";
import { buildOutputs, buildsConcerned, isBuildOutput, outputsSignature, runBuilds } from "./custom-builds.ts";

export interface DevServerOptions {
  paths: ProjectPaths;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /**
   * The process environment: DATABASE_URL, REDIS_URL, REDIS_PROXY_PORT (or REDIS_PROXY_URL + REDIS_PROXY_TOKEN, a
   * running proxy), as `npm start` reads them, and the secrets functions declare (over .dev.vars).
   */
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
  /** Files whose build errors this reload's builds fixed ("functions/hello/index.ts"), or "settings". */
  fixed: string[];
  /** From the save (the file's mtime) until miniflare serves the new version. */
  ms?: number;
  buildMs: number;
  /** Handing the new bundles to their dev loaders (starting them). */
  loadMs?: number;
  /** Present when settings changed: miniflare restarted workerd. */
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

/** REDIS_PROXY_PORT, as `npm start` reads it: the Redis proxy's loopback port (0 or unset: a free one). */
function redisProxyPort(env: NodeJS.ProcessEnv): number {
  const value = env.REDIS_PROXY_PORT ?? "0";
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new UserError(`REDIS_PROXY_PORT must be a port number (got "${value}"): unset it for a free port`);
  }
  return port;
}

/** The worker options without the scripts, to tell whether anything but code changed. */
const settingsKey = (workers: WorkerOptions[]) =>
  JSON.stringify(workers, (key, value: unknown) => (key === "contents" ? undefined : value));

/** Starts the database, bundles every function and the gateway, serves them on miniflare and watches for saves. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const { paths, log } = opts;
  const proxyPort = redisProxyPort(opts.env);
  await ensurePortFree(opts.host, opts.port);
  const { sources, errors: initialErrors, failed: initialFailures } = await DevSources.load(paths);
  for (const e of initialErrors) log(`${e}\n  (not served until a save fixes it)`);
  // Front ends first ([build]): their assets folders are what miniflare serves.
  for (const e of (await runBuilds(sources.functions, paths.root, log)).errors)
    log(`${e}\n  (its assets are served as they are until a save fixes it)`);

  // The database (PGlite in this process, or a check of the given server) and the Redis proxy start at once.
  const [db, rd] = await Promise.allSettled([
    startDevDatabase({
      given: opts.env.DATABASE_URL ?? sources.devVars.DATABASE_URL,
      embeddedDir: opts.embeddedDbDir ?? paths.embeddedDb,
      migrations: paths.migrations,
      log,
    }),
    opts.env.REDIS_PROXY_URL
      ? attachRunningProxy(opts.env)
      : startRedisService({ redisUrl: opts.env.REDIS_URL ?? sources.devVars.REDIS_URL, port: proxyPort, log }),
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

  const token = devToken();
  let loaderScript: string;
  try {
    loaderScript = await devLoaderScript(bundleDir(paths, "dev-loader"), sources.gatewaySettings.compatibilityDate);
  } catch (err) {
    await backends();
    await sources.dispose();
    throw err;
  }
  const missing = new Map<string, string[]>();
  /** The workers (dev loaders) for the functions that have these scripts, with the current config and secrets. */
  const workers = (scripts: Map<string, string>): WorkerOptions[] => {
    missing.clear();
    const functions = sources.functions.map((fn) => {
      const bindings = functionBindings(fn, { provided, env: opts.env, devVars: sources.devVars });
      if (bindings.missing.length > 0) missing.set(fn.name, bindings.missing);
      return { fn, dir: bundleDir(paths, serviceName(fn)), built: scripts.has(serviceName(fn)), bindings };
    });
    const gateway = { dir: bundleDir(paths, GATEWAY_WORKER), compatibilityDate: sources.gatewaySettings.compatibilityDate };
    return devWorkers({ script: loaderScript, token }, gateway, functions);
  };
  /** A worker's script with its current compatibility settings. */
  const version = (worker: string, script: string): DevVersion => {
    const fn = sources.functions.find((f) => serviceName(f) === worker);
    const { compatibilityDate, compatibilityFlags } = fn
      ? { compatibilityDate: fn.config.compatibility_date, compatibilityFlags: fn.config.compatibility_flags }
      : sources.gatewaySettings;
    return devVersion(worker, script, compatibilityDate, compatibilityFlags);
  };
  /** The version each dev loader serves now, by worker. */
  const active = new Map<string, string>();
  /** Starts these workers' scripts in their dev loaders; returns those that did not start, with workerd's message. */
  const load = async (scripts: Map<string, string>, names: string[]): Promise<Map<string, string>> => {
    const versions = names.flatMap((w) => {
      const script = scripts.get(w);
      return script === undefined ? [] : [version(w, script)];
    });
    const failures = await activate(mf, token, versions);
    for (const v of versions) if (!failures.has(v.worker)) active.set(v.worker, v.id);
    return failures;
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
  const initial = workers(served.scripts);
  served.key = `${settingsKey(initial)}#0`;
  const mf = new Miniflare({ ...shared, workers: initial });
  let url: string;
  /** Scripts workerd refused to start (a throw at the top level): not tried again until they change. */
  const rejected = new Map<string, string>();
  try {
    const ready = await mf.ready;
    url = `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${ready.port}`;
    const failures = await load(served.scripts, [...served.scripts.keys()]);
    const gatewayFailure = failures.get(GATEWAY_WORKER);
    if (gatewayFailure !== undefined) throw new Error(`The gateway did not start: ${gatewayFailure}`);
    for (const [worker, message] of failures) {
      log(`${worker.replace(/^fn-/, "functions/")} did not start: ${message}\n  (not served until a save fixes it)`);
      rejected.set(worker, served.scripts.get(worker) ?? "");
    }
  } catch (err) {
    await mf.dispose();
    await backends();
    await sources.dispose();
    throw err;
  }

  const reloads: ReloadRecord[] = [];
  /** Bundlers ("gateway", "hello") whose last build failed, with the files the errors were in. */
  const broken = new Map<string, string[]>(initialFailures);
  let brokenConfig = false;
  const functionsDir = realpathSync(paths.functions);
  const rootFiles = new Set([join(sources.root, DEV_VARS_FILE), join(sources.root, "wrangler.toml")]);
  const workerOf = (bundler: string) => (bundler === GATEWAY_WORKER ? bundler : serviceName({ name: bundler }));
  const names = (workers: string[]) => workers.map((w) => w.replace(/^fn-/, "")).join(", ");

  /** Counts front-end builds: miniflare reads an assets folder when it starts, so a new build restarts it. */
  let assetBuilds = 0;
  /** The folders [build] commands write (read again with the settings: each asks git once). */
  let outputs = buildOutputs(sources.functions, paths.root);
  /** The build outputs' files as this server last built or read them: a change to them is someone else's build. */
  let knownOutputs = outputsSignature(outputs);

  const reload = async (batch: ChangeBatch): Promise<void> => {
    const started = performance.now();
    const errors: string[] = [];
    const fixed: string[] = [];
    // What a [build] command wrote is its output, not a save. Written by another command (npm run build or deploy
    // on the same folder) rather than by this server's own builds, it is read again: miniflare keeps a folder's list
    // of files from its start.
    let outputChanged = false;
    for (const file of batch.changes.keys()) {
      if (!isBuildOutput(outputs, file)) continue;
      batch.changes.delete(file);
      outputChanged = true;
    }
    const now = outputChanged ? outputsSignature(outputs) : knownOutputs;
    const builtElsewhere = now !== knownOutputs;
    if (builtElsewhere) {
      knownOutputs = now;
      assetBuilds++;
      log("a front end's built files changed on disk (another build): reading them again");
    }
    if (batch.changes.size === 0 && !builtElsewhere) return;
    // Config, secrets and the set of functions are read again when a file that holds them, or a folder, changes.
    const structural = [...batch.changes].some(
      ([file, kind]) => rootFiles.has(file) || file.endsWith(`${sep}wrangler.toml`) || (kind !== "change" && file.startsWith(functionsDir)),
    );
    let fresh: WorkerBundler[] = [];
    if (structural) {
      const before = new Set(sources.functions.map((f) => f.name));
      try {
        fresh = await sources.refresh();
        outputs = buildOutputs(sources.functions, paths.root);
        if (brokenConfig) fixed.push("settings");
        brokenConfig = false;
      } catch (err) {
        brokenConfig = true;
        errors.push(`${(err as Error).message}\n  (still serving the last good config)`);
      }
      for (const name of before) if (!sources.functions.some((f) => f.name === name)) log(`functions/${name} is gone: no longer served`);
    }
    const built = await sources.rebuild([...batch.changes.keys()], fresh);
    errors.push(...built.errors.map((e) => `${e}\n  (still serving the last good version)`));
    const frontEnds = buildsConcerned(sources.functions, [...batch.changes.keys()]);
    if (frontEnds.length > 0) {
      const result = await runBuilds(frontEnds, paths.root, log);
      // What it wrote is known: its writes, reaching the watcher after this, are not another build's.
      knownOutputs = outputsSignature(outputs);
      errors.push(...result.errors.map((e) => `${e}\n  (its assets are served as they are)`));
      // Only a build that wrote something new needs miniflare to read the folder again.
      if (result.built > 0) assetBuilds++;
    }
    for (const e of errors) log(e);
    for (const [bundler, files] of built.failed) broken.set(bundler, files);
    /** Workers whose bundle builds again after an error. */
    const repaired: string[] = [];
    for (const bundler of built.built) {
      const files = broken.get(bundler);
      if (!files) continue;
      broken.delete(bundler);
      repaired.push(workerOf(bundler));
      for (const file of files) if (!fixed.includes(file)) fixed.push(file);
    }

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
    const key = `${settingsKey(next)}#${assetBuilds}`;
    const changed = [...scripts.keys()].filter((w) => scripts.get(w) !== served.scripts.get(w) || !active.has(w));
    const buildMs = Math.round(performance.now() - started);
    /** Says which fixed errors are now served, once the outcome is known. */
    const sayFixed = (serving: string[]) => {
      if (fixed.length === 0) return;
      const now = repaired.filter((w) => serving.includes(w));
      const same = repaired.filter((w) => !serving.includes(w) && active.has(w));
      const parts = [
        ...(now.length > 0 ? [`serving the new ${names(now)} from this save`] : []),
        ...(same.length > 0 ? [`${names(same)} unchanged: still serving the version from before the error`] : []),
      ];
      const what = fixed.map((f) => (f === "settings" ? "the settings read" : `${f} builds`)).join(", ");
      log(`fixed: ${what} again${parts.length > 0 ? `; ${parts.join("; ")}` : ""}`);
    };
    if (changed.length === 0 && key === served.key) {
      sayFixed([]);
      reloads.push({ workers: [], errors, fixed, buildMs });
      return;
    }

    let restartMs: number | undefined;
    if (key !== served.key) {
      // Settings changed: a new workerd, whose dev loaders serve nothing until they are handed their scripts.
      const restartStarted = performance.now();
      try {
        await mf.setOptions({ ...shared, workers: next });
      } catch (err) {
        log(`the new settings did not start: ${(err as Error).message}\n  (still serving the last settings that did)`);
        await mf.setOptions({ ...shared, workers: workers(served.scripts) });
        await load(served.scripts, [...served.scripts.keys()]);
        reloads.push({ workers: [], errors: [...errors, (err as Error).message], fixed, buildMs });
        return;
      }
      restartMs = Math.round(performance.now() - restartStarted);
    }
    const loadStarted = performance.now();
    // After a restart every dev loader is new and serves nothing until handed its script.
    const failures = await load(scripts, restartMs === undefined ? changed : [...scripts.keys()]);
    for (const [worker, message] of failures) {
      log(`the new version of ${names([worker])} did not start: ${message}\n  (still serving the last version that did)`);
      rejected.set(worker, scripts.get(worker) ?? "");
      const last = served.scripts.get(worker);
      if (last === undefined) scripts.delete(worker);
      else scripts.set(worker, last);
    }
    // After a restart, a dev loader whose new version failed serves the one before it.
    const again = restartMs === undefined ? [] : [...failures.keys()].filter((w) => scripts.has(w));
    if (again.length > 0) await load(scripts, again);
    for (const worker of active.keys()) if (!scripts.has(worker)) active.delete(worker);
    const loadMs = Math.round(performance.now() - loadStarted);
    const serving = changed.filter((w) => !failures.has(w));
    served = { scripts, key };
    const ms = Math.round(Date.now() - batch.savedAt);
    sayFixed(serving);
    if (serving.length > 0 || restartMs !== undefined) {
      const what = serving.length > 0 ? names(serving) : "settings";
      const timing =
        restartMs === undefined
          ? `build ${buildMs} ms, load ${loadMs} ms`
          : `build ${buildMs} ms, restart ${restartMs} ms, load ${loadMs} ms`;
      log(`reloaded ${what} in ${ms} ms (${timing})`);
    }
    reloads.push({
      workers: serving,
      errors: [...errors, ...failures.values()],
      fixed,
      ...(serving.length > 0 || restartMs !== undefined ? { ms } : {}),
      buildMs,
      loadMs,
      ...(restartMs === undefined ? {} : { restartMs }),
    });
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
      served: active.has(serviceName(fn)),
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
