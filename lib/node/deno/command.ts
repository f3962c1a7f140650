/**
 * `npm run deno -- <name>`: one function on Deno, from its own source (issue #21). Writes the function's Deno target
 * (build/deno-target.ts), starts what its config asks for as `npm run dev` does (DATABASE_URL as given or the embedded
 * PGlite; REDIS_URL behind the Redis proxy or its in-memory backend; the queue service when it produces to a queue),
 * then runs Deno (from the npm registry, the `deno` package) on the entry, loopback by default. Deno's output is
 * passed through; a signal stops Deno first (it drains waitUntil work and closes its pool), then the rest.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { spawnTied } from "../common/tied-child.ts";
import { UserError } from "../common/user-error.ts";
import {
  DENO_HOST_VAR,
  DENO_PORT_VAR,
  DENO_TEST_SCHEDULED_VAR,
  QUEUE_SERVICE_TOKEN_VAR,
  QUEUE_SERVICE_URL_VAR,
} from "../../shared/names.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { denoEntry, denoImportMap, writeDenoTargets } from "../build/deno-target.ts";
import { discoverFunctions } from "../build/functions.ts";
import type { FunctionSource } from "../build/functions.ts";
import { migrateUp, PLATFORM_MIGRATIONS } from "../data/migrations.ts";
import { startDevDatabase } from "../dev/database.ts";
import { readDevVars } from "../dev/dev-vars.ts";
import { functionQueues } from "../queues/config.ts";
import { startQueues } from "../queues/queues.ts";
import { startRedisService } from "../redis/service.ts";

export interface DenoCommandOptions {
  paths: ProjectPaths;
  name: string;
  host: string;
  port: number;
  /** Serve /__scheduled?cron=... (fires a cron by hand), as `wrangler dev --test-scheduled` does. */
  testScheduled?: boolean;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** What the Deno process is allowed: the network, its environment, system facts (postgres.js); reads: see denoArgs. */
export const DENO_FLAGS = [
  "--allow-net",
  "--allow-env",
  "--allow-sys",
  "--unstable-cron",
  "--no-prompt",
  "--no-lock",
  "--unstable-no-legacy-abort",
];

/** What of the caller's environment reaches Deno besides the function's declared secrets. */
const PASSED_ENV = ["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "NO_COLOR", "DENO_DIR"];

/** The Deno binary: WORKYARD_DENO, else the `deno` package's. */
export function denoBinary(paths: ProjectPaths, env: NodeJS.ProcessEnv): string {
  if (env.WORKYARD_DENO) return env.WORKYARD_DENO;
  const bin = join(paths.root, "node_modules", ".bin", "deno");
  if (!existsSync(bin)) throw new UserError("Deno is not installed here: run `npm install` (it comes from the npm registry, package deno)");
  return bin;
}

/** The function named `name`, or a message listing those there are. */
async function findFunction(paths: ProjectPaths, name: string): Promise<{ fn: FunctionSource; all: FunctionSource[] }> {
  const all = await discoverFunctions(paths.functions, paths.sharedConfig);
  const fn = all.find((f) => f.name === name);
  if (!fn) throw new UserError(`No function named "${name}": there are ${all.map((f) => f.name).join(", ") || "none"}`);
  if (fn.assetsOnly) {
    throw new UserError(
      `functions/${name} is made of assets alone, which npm run deno does not serve: serve it with npm start or npm run dev`,
    );
  }
  if (fn.config.services) {
    throw new UserError(
      `functions/${name} calls ${fn.config.services.map((s) => s.service).join(" and ")} through [[services]] bindings, which Deno does not have: ` +
        "serve it with npm start or npm run dev (or on Cloudflare)",
    );
  }
  return { fn, all };
}

export async function runOnDeno(opts: DenoCommandOptions): Promise<number> {
  const { paths, env, log } = opts;
  const { fn, all } = await findFunction(paths, opts.name);
  const binary = denoBinary(paths, env);
  await writeDenoTargets(paths, all);
  const devVars = await readDevVars(paths.root);
  const secrets = fn.config.secrets?.required ?? [];
  const producers = functionQueues(fn).producers;
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => log(`stopping: ${(err as Error).message}`));
  };
  // A signal while the services start stops them and Deno is not started; once Deno runs, it is passed on to Deno,
  // which finishes its requests and waitUntil work (a second one makes it stop at once).
  let child: ReturnType<typeof spawnTied> | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    child?.kill(signal);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const given: Record<string, string> = {};
    if (secrets.includes("DATABASE_URL") || producers.length > 0) {
      const database = await startDevDatabase({
        given: env.DATABASE_URL ?? devVars.DATABASE_URL,
        embeddedDir: paths.embeddedDb,
        migrations: paths.migrations,
        log,
      });
      stops.push(() => database.stop());
      given.DATABASE_URL = database.url;
      if (producers.length > 0 && !interrupted) {
        if (database.kind === "postgres") await migrateUp(database.url, PLATFORM_MIGRATIONS.dir, PLATFORM_MIGRATIONS.table);
        const queues = await startQueues({ databaseUrl: database.url, prepare: database.kind !== "embedded-pglite", log });
        stops.push(() => queues.stop());
        given[QUEUE_SERVICE_URL_VAR] = queues.url;
        given[QUEUE_SERVICE_TOKEN_VAR] = queues.token;
      }
    }
    if (secrets.some((s) => s.startsWith("UPSTASH_REDIS_REST_")) && !interrupted) {
      const redis = await startRedisService({ redisUrl: env.REDIS_URL ?? devVars.REDIS_URL, port: 0, log });
      stops.push(() => redis.stop());
      Object.assign(given, redis.bindings);
    }
    if (interrupted) return 130;
    const code = await new Promise<number>((resolve) => {
      const spawned = spawnTied(binary, denoArgs(paths, fn.name), { cwd: paths.root, env: childEnv(given), stdio: "inherit" });
      child = spawned;
      spawned.once("exit", (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
      spawned.once("error", (err) => {
        log(`could not start Deno (${binary}): ${err.message}`);
        resolve(1);
      });
    });
    return code;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await stopAll();
  }

  /**
   * The environment Deno runs with: as on workerd, the function sees the secrets it declares and nothing else of this
   * one (only what a process needs to run: PATH, HOME, locale, time zone), plus where to listen and the queue service.
   */
  function childEnv(given: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of PASSED_ENV) if (env[name] !== undefined) out[name] = env[name];
    // Secrets: what was started here, else the environment, else .dev.vars (as npm run dev).
    for (const name of secrets) {
      const value = given[name] ?? env[name] ?? devVars[name];
      if (value !== undefined) out[name] = value;
    }
    for (const name of [QUEUE_SERVICE_URL_VAR, QUEUE_SERVICE_TOKEN_VAR]) if (given[name]) out[name] = given[name];
    out[DENO_HOST_VAR] = opts.host;
    out[DENO_PORT_VAR] = String(opts.port);
    if (opts.testScheduled) out[DENO_TEST_SCHEDULED_VAR] = "1";
    // Deno's own cache stays in the project (a fresh clone has nothing in ~/.cache/deno to rely on).
    out.DENO_DIR ??= join(paths.work, "deno-cache");
    return out;
  }
}

/** Deno's command line for a function's entry. */
const denoArgs = (paths: ProjectPaths, name: string) => denoRunArgs(paths, denoEntry(paths, name));

/** `deno run` of `script` with the permissions a function gets and the SDK's import map, then `args`. */
export function denoRunArgs(paths: ProjectPaths, script: string, args: string[] = []): string[] {
  return [
    "run",
    ...DENO_FLAGS,
    // Files: the project's own (its sources and node_modules) and nothing else.
    `--allow-read=${paths.root}`,
    "--node-modules-dir=manual",
    `--import-map=${denoImportMap(paths)}`,
    script,
    ...args,
  ];
}
