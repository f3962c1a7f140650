/**
 * Function discovery: every folder under functions/ with an index.ts (or index.js) is a function, served
 * at /<folder name>, and so is one with only a wrangler.toml that declares [assets] (its files alone). Adding a folder
 * adds a route; nothing else is edited.
 */
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { FUNCTIONS_VAR } from "../../shared/names.ts";
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_MS } from "../releases/manifest.ts";
import {
  checkUpstreams,
  ConfigError,
  mergeConfig,
  mergeRouteOptions,
  mergeUpstreams,
  readFunctionConfig,
  readSharedConfig,
} from "./wrangler-config.ts";
import type { BuildConfig, MergedConfig, RouteOptions } from "./wrangler-config.ts";

export interface FunctionSource {
  name: string;
  dir: string;
  entry: string;
  config: MergedConfig;
  route: RouteOptions;
  /** Its [build] command, run before bundling (custom-build.ts), with absolute folders. */
  build?: CustomBuild;
  /** No code of its own (no index.ts): its entry is the platform's ASSETS_ONLY_ENTRY. */
  assetsOnly?: boolean;
}

/** The code of an assets-only function: a 404 for whatever no file answers (lib/workers/assets/assets-only.ts). */
export const ASSETS_ONLY_ENTRY = fileURLToPath(new URL("../../workers/assets/assets-only.ts", import.meta.url));

/** A function's [build] table with its folders resolved against the function's folder. */
export interface CustomBuild {
  command: string;
  cwd: string;
  watchDirs: string[];
}

function customBuild(dir: string, build: BuildConfig | undefined): CustomBuild | undefined {
  if (!build) return undefined;
  const watch = build.watch_dir === undefined ? ["./src"] : [build.watch_dir].flat();
  return { command: build.command, cwd: resolve(dir, build.cwd ?? "."), watchDirs: watch.map((d) => resolve(dir, d)) };
}

/** Function names become URL segments, worker names and binding names: keep them plain. */
export const FUNCTION_NAME = /^[a-z][a-z0-9-]{0,62}$/;

const ENTRIES = ["index.ts", "index.js", "index.mts", "index.mjs"];

/** The function's service binding name in the gateway: "my-fn" → "FN_MY_FN". */
export function bindingName(name: string): string {
  return `FN_${name.toUpperCase().replaceAll("-", "_")}`;
}

/** What the gateway needs to route to a function, with the defaults applied. */
export interface RouteSettings {
  name: string;
  binding: string;
  timeoutMs: number;
  maxBodyBytes: number;
  isolate: boolean;
  /** Size of the function host's database pool per workerd process; 0: no host, a connection per request. */
  dbPool: number;
}

/** The pool a function gets when it declares DATABASE_URL and does not set db_pool_size. */
export const DEFAULT_DB_POOL = 10;

/** A function's route settings from its merged config. */
export function routeSettings(fn: FunctionSource): RouteSettings {
  return {
    name: fn.name,
    binding: bindingName(fn.name),
    timeoutMs: fn.route.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    maxBodyBytes: fn.route.max_body_bytes ?? DEFAULT_MAX_BODY_BYTES,
    isolate: fn.route.isolate ?? true,
    dbPool: dbPool(fn),
  };
}

function dbPool(fn: FunctionSource): number {
  // The pool serves DATABASE_URL; a function without it has nothing to pool (a shared setting does not apply).
  if (!(fn.config.secrets?.required?.includes("DATABASE_URL") ?? false)) return 0;
  if (fn.route.isolate === false) {
    if ((fn.route.db_pool_size ?? 0) > 0) {
      throw new ConfigError(
        `functions/${fn.name}: db_pool_size needs the function's own isolate (its pool lives in a host object there); ` +
          "remove isolate = false, or db_pool_size for a connection per request.",
      );
    }
    return 0;
  }
  return fn.route.db_pool_size ?? DEFAULT_DB_POOL;
}

/** Finds every function under `functionsDir`, validates names and reads each one's merged Wrangler config. */
export async function discoverFunctions(functionsDir: string, sharedConfigFile: string): Promise<FunctionSource[]> {
  const shared = await readSharedConfig(sharedConfigFile);
  let entries;
  try {
    entries = await readdir(functionsDir, { withFileTypes: true });
  } catch {
    throw new ConfigError(`${functionsDir} does not exist: create it with one folder per function`);
  }
  const found: FunctionSource[] = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = join(functionsDir, entry.name);
    const file = ENTRIES.find((f) => existsSync(join(dir, f)));
    const own = await readFunctionConfig(join(dir, "wrangler.toml"));
    // Without an entry, a folder is a function only when its wrangler.toml declares [assets] (an assets-only one).
    if (!file && !own.assets) continue; // a folder without an entry is not a function (yet)
    if (!FUNCTION_NAME.test(entry.name)) {
      throw new ConfigError(
        `functions/${entry.name}: a function's folder name is its URL path, so it must be lowercase letters, digits and "-", starting with a letter (e.g. "send-mail")`,
      );
    }
    checkUpstreams(join(dir, "wrangler.toml"), mergeUpstreams(shared, own));
    const entryPath = file ? join(dir, file) : ASSETS_ONLY_ENTRY;
    found.push({
      name: entry.name,
      dir,
      entry: entryPath,
      config: mergeConfig(entry.name, entryPath, shared, own, dir),
      route: mergeRouteOptions(shared, own),
      ...(own.build ? { build: customBuild(dir, own.build) } : {}),
      ...(file ? {} : { assetsOnly: true }),
    });
  }
  // Every function is told the others' names (the docs page lists their documents); vars are not part of a bundle.
  const names = found.map((f) => f.name).join(",");
  for (const f of found) {
    if (!f.assetsOnly && f.config.compatibility_flags.includes("no_nodejs_compat")) {
      throw new ConfigError(
        `functions/${f.name}: compatibility flag no_nodejs_compat is not supported here: each function's worker records its invocations ` +
          "(console lines, errors) with Node.js's AsyncLocalStorage and diagnostics channels, so workerd needs nodejs_compat; remove the flag",
      );
    }
    if (f.config.services && f.route.isolate === false) {
      throw new ConfigError(
        `functions/${f.name}/wrangler.toml: [[services]] bindings need the function's own isolate (they are bindings of its worker); remove isolate = false, or the services`,
      );
    }
    for (const s of f.config.services ?? []) {
      if (!found.some((other) => other.name === s.service)) {
        throw new ConfigError(
          `functions/${f.name}/wrangler.toml: [[services]] ${s.binding} names "${s.service}", which is not a function here (found: ${names || "none"})`,
        );
      }
    }
  }
  for (const f of found) f.config.vars[FUNCTIONS_VAR] = names;
  return found;
}
