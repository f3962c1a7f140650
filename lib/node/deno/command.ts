/**
 * `npm run deno -- <name>`: one function on Deno, from its own source (issue #21). Writes the function's Deno target
 * (build/deno-target.ts), starts what its config asks for as `npm run dev` does (DATABASE_URL as given or the embedded
 * PGlite; REDIS_URL behind the Redis proxy or its in-memory backend; the queue service when it produces to a queue),
 * then runs Deno (from the npm registry, the `deno` package) on the entry, loopback by default. Deno's output is
 * passed through; a signal stops Deno first (it drains waitUntil work and closes its pool), then the rest.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../common/user-error.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { denoEntry, denoImportMap, writeDenoTargets } from "../build/deno-target.ts";
import { discoverFunctions } from "../build/functions.ts";
import type { FunctionSource } from "../build/functions.ts";
import { migrateUp, PLATFORM_MIGRATIONS } from "../data/migrations.ts";
import { startDevDatabase } from "../dev/database.ts";
import type { DevDatabase } from "../dev/database.ts";
import { readDevVars } from "../dev/dev-vars.ts";
import { functionQueues } from "../queues/config.ts";
import { startQueues } from "../queues/queues.ts";
import { startRedisService } from "../redis/service.ts";

export interface DenoCommandOptions {
  paths: ProjectPaths;
  name: string;
  host: string;
  port: number;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** What the Deno process is allowed: the network, the environment, reading files and system facts (postgres.js). */
export const DENO_FLAGS = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-sys",
  "--unstable-cron",
  "--no-prompt",
  "--no-lock",
  "--unstable-no-legacy-abort",
];

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
  const given: Record<string, string> = {};
  try {
    let database: DevDatabase | undefined;
    if (secrets.includes("DATABASE_URL") || producers.length > 0) {
      database = await startDevDatabase({
        given: env.DATABASE_URL ?? devVars.DATABASE_URL,
        embeddedDir: paths.embeddedDb,
        migrations: paths.migrations,
        log,
      });
      stops.push(() => database?.stop() ?? Promise.resolve());
      given.DATABASE_URL = database.url;
    }
    if (secrets.some((s) => s.startsWith("UPSTASH_REDIS_REST_"))) {
      const redis = await startRedisService({ redisUrl: env.REDIS_URL ?? devVars.REDIS_URL, port: 0, log });
      stops.push(() => redis.stop());
      Object.assign(given, redis.bindings);
    }
    if (producers.length > 0 && database) {
      if (database.kind === "postgres") await migrateUp(database.url, PLATFORM_MIGRATIONS.dir, PLATFORM_MIGRATIONS.table);
      const queues = await startQueues({ databaseUrl: database.url, prepare: database.kind !== "embedded-pglite", log });
      stops.push(() => queues.stop());
      given.WORKYARD_QUEUE_URL = queues.url;
      given.WORKYARD_QUEUE_TOKEN = queues.token;
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  // Secrets: what was started here, else the environment, else .dev.vars (as npm run dev).
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  for (const name of secrets) {
    const value = given[name] ?? env[name] ?? devVars[name];
    if (value !== undefined) childEnv[name] = value;
  }
  for (const name of ["WORKYARD_QUEUE_URL", "WORKYARD_QUEUE_TOKEN"]) if (given[name]) childEnv[name] = given[name];
  childEnv.WORKYARD_DENO_HOST = opts.host;
  childEnv.WORKYARD_DENO_PORT = String(opts.port);
  // Deno's own cache stays in the project (a fresh clone has nothing in ~/.cache/deno to rely on).
  childEnv.DENO_DIR ??= join(paths.work, "deno-cache");

  const args = ["run", ...DENO_FLAGS, "--node-modules-dir=manual", `--import-map=${denoImportMap(paths)}`, denoEntry(paths, fn.name)];
  const child = spawn(binary, args, { cwd: paths.root, env: childEnv, stdio: "inherit" });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  const code = await new Promise<number>((resolve) => {
    child.once("exit", (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    child.once("error", (err) => {
      log(`could not start Deno (${binary}): ${err.message}`);
      resolve(1);
    });
  });
  process.off("SIGINT", forward);
  process.off("SIGTERM", forward);
  await stopAll();
  return code;
}
