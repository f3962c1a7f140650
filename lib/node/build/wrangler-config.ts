/**
 * Function settings in Wrangler's own format. The top-level wrangler.toml holds what every function shares;
 * functions/<name>/wrangler.toml (optional) holds what belongs to one function. The build merges the two
 * into one complete Wrangler config per function (.workyard/wrangler/<name>.json), which is what Wrangler
 * bundles from, and what `wrangler dev -c` / `wrangler deploy -c` can use to run the same function elsewhere.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { UserError } from "../common/user-error.ts";
import { HTML_HANDLING, NOT_FOUND_HANDLING } from "../../shared/assets.ts";
import { failoverChain, UPSTREAMS_VAR, upstreamTablesSchema } from "../../shared/upstream-policy.ts";
import type { UpstreamTables } from "../../shared/upstream-policy.ts";

const varsSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.record(z.string(), z.unknown())]));
const variableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a valid variable name");
const secretsSchema = z.strictObject({ required: z.array(variableName) });
const cronsSchema = z.strictObject({ crons: z.array(z.string()) });

/** Cloudflare's rule for queue names. */
export const QUEUE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const queueName = z.string().regex(QUEUE_NAME, "a queue name: lowercase letters, digits and -, up to 63 characters");
/** Longest delay Cloudflare allows on a message or a retry: 12 hours. */
export const MAX_DELAY_SECONDS = 43_200;
const delay = z.number().int().min(0).max(MAX_DELAY_SECONDS);

/** Wrangler's [[queues.producers]] and [[queues.consumers]], with Cloudflare's limits. */
const queuesSchema = z.strictObject({
  producers: z
    .array(
      z.strictObject({
        queue: queueName,
        binding: variableName,
        delivery_delay: delay.optional(),
      }),
    )
    .optional(),
  consumers: z
    .array(
      z.strictObject({
        queue: queueName,
        type: z.literal("worker").optional(),
        max_batch_size: z.number().int().min(1).max(100).optional(),
        max_batch_timeout: z.number().min(0).max(60).optional(),
        max_retries: z.number().int().min(0).max(100).optional(),
        dead_letter_queue: queueName.optional(),
        retry_delay: delay.optional(),
        max_concurrency: z.number().int().min(1).max(250).optional(),
      }),
    )
    .optional(),
});
export type QueuesConfig = z.infer<typeof queuesSchema>;

/**
 * Wrangler's [assets]: a folder served beside the function (its `directory` relative to the function's folder), the
 * binding the function reaches it by, and how paths map to files. The same table deploys to Cloudflare unchanged.
 */
const assetsSchema = z.strictObject({
  directory: z.string().min(1, 'the folder of files to serve, relative to the function\'s folder (e.g. "./dist")'),
  binding: variableName.optional(),
  html_handling: z.enum(HTML_HANDLING).optional(),
  not_found_handling: z.enum(NOT_FOUND_HANDLING).optional(),
  /** true: the function runs before any asset; a list of path patterns ("/api/*", "!/api/docs/*"): for those. */
  run_worker_first: z.union([z.boolean(), z.array(z.string().regex(/^!?\//, 'a path pattern starting with "/" (or "!/")'))]).optional(),
});
export type AssetsConfig = z.infer<typeof assetsSchema>;

/**
 * Wrangler's [[services]]: another function this one calls through a binding (`env.AUTH.fetch(...)`), as a service
 * binding on Cloudflare. Here the call goes through the gateway's FunctionCall entrypoint, so it gets the callee's
 * deadline, body limit, request record and metrics like any request.
 */
const servicesSchema = z.array(
  z.strictObject({
    binding: variableName,
    service: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "the name of another function (its folder under functions/)"),
  }),
);
export type ServicesConfig = z.infer<typeof servicesSchema>;

/**
 * Wrangler's [build]: a command run in the function's folder before it is bundled, e.g. the front end's `vite build`
 * writing the [assets] directory. `cwd` and `watch_dir` (what `npm run dev` watches to run it again; default "./src")
 * are relative to the function's folder.
 */
const buildSchema = z.strictObject({
  command: z.string().min(1, 'the command to run, e.g. "vite build"'),
  cwd: z.string().optional(),
  watch_dir: z.union([z.string(), z.array(z.string())]).optional(),
});
export type BuildConfig = z.infer<typeof buildSchema>;

/**
 * Route options: the one table Wrangler does not know. It never reaches Wrangler (the merged config
 * leaves it out); the gateway enforces it.
 */
const routeSchema = z.strictObject({
  timeout_ms: z.number().int().min(100).max(600_000).optional(),
  max_body_bytes: z
    .number()
    .int()
    .min(1)
    .max(100 * 1024 * 1024)
    .optional(),
  /** Run a fire time missed while the service was down, once, at start. */
  cron_catch_up: z.boolean().optional(),
  /** Let a cron run start while the previous run of the same cron is still going. */
  cron_overlap: z.boolean().optional(),
  /** How long one scheduled run may take. */
  cron_timeout_ms: z.number().int().min(1000).max(3_600_000).optional(),
  /** How long one queue() call may take before its batch is delivered again (its lease). */
  queue_timeout_ms: z.number().int().min(1000).max(900_000).optional(),
  /**
   * false: serve the function's HTTP requests in the gateway's isolate (no service-binding hop, about twice
   * the throughput of a small request; shares globals and compatibility settings with other such functions).
   */
  isolate: z.boolean().optional(),
  /**
   * Connections to PgBouncer each workerd process keeps open for this function, reused across requests (the
   * function runs inside a host object that owns them). Default 10 for a function that declares DATABASE_URL;
   * 0 opens a connection per request instead.
   */
  db_pool_size: z.number().int().min(0).max(100).optional(),
  /** [workyard.upstreams.<name>]: how the function calls each outside service (lib/shared/upstream-policy.ts). */
  upstreams: upstreamTablesSchema.optional(),
});
export type RouteOptions = Omit<z.infer<typeof routeSchema>, "upstreams">;

const settings = {
  compatibility_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date like "2026-04-20"'),
  compatibility_flags: z.array(z.string()),
  minify: z.boolean(),
  keep_names: z.boolean(),
  upload_source_maps: z.boolean(),
  vars: varsSchema,
  secrets: secretsSchema,
  triggers: cronsSchema,
};

/** The top-level wrangler.toml: the settings every function inherits. */
export const sharedConfigSchema = z.strictObject({
  ...settings,
  compatibility_flags: settings.compatibility_flags.default([]),
  minify: settings.minify.default(true),
  keep_names: settings.keep_names.default(true),
  upload_source_maps: settings.upload_source_maps.default(true),
  vars: varsSchema.default({}),
  secrets: secretsSchema.optional(),
  triggers: cronsSchema.optional(),
  workyard: routeSchema.default({}),
});
export type SharedConfig = z.infer<typeof sharedConfigSchema>;

/** functions/<name>/wrangler.toml: what belongs to one function. Every key is optional. */
export const functionConfigSchema = z.strictObject({
  compatibility_date: settings.compatibility_date.optional(),
  compatibility_flags: settings.compatibility_flags.optional(),
  vars: varsSchema.optional(),
  secrets: secretsSchema.optional(),
  triggers: cronsSchema.optional(),
  queues: queuesSchema.optional(),
  assets: assetsSchema.optional(),
  services: servicesSchema.optional(),
  build: buildSchema.optional(),
  workyard: routeSchema.optional(),
});
export type FunctionConfig = z.infer<typeof functionConfigSchema>;

/** A complete Wrangler config for one function. */
export interface MergedConfig {
  name: string;
  main: string;
  compatibility_date: string;
  compatibility_flags: string[];
  minify: boolean;
  keep_names: boolean;
  upload_source_maps: boolean;
  vars: Record<string, unknown>;
  secrets?: { required: string[] };
  triggers?: { crons: string[] };
  queues?: QueuesConfig;
  /** With `directory` as an absolute path (the merged config is written elsewhere than the function's folder). */
  assets?: AssetsConfig;
  services?: ServicesConfig;
}

/** A wrangler.toml or functions/ folder that cannot be used (tests tell it apart). */
export class ConfigError extends UserError {}

async function readToml(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return parseToml(text);
  } catch (err) {
    throw new ConfigError(`${file} is not valid TOML: ${(err as Error).message}`, { cause: err });
  }
}

function explain(file: string, error: z.ZodError): ConfigError {
  const lines = error.issues.map((i) => {
    const key = i.path.map(String).join(".") || "(file)";
    if (i.code === "unrecognized_keys") {
      return `  - ${key === "(file)" ? "" : `${key}: `}${i.keys.join(", ")}: not supported here (supported: vars, compatibility_date, compatibility_flags, secrets.required, triggers.crons, queues.producers, queues.consumers, assets, services, build, workyard.timeout_ms, workyard.max_body_bytes, workyard.cron_catch_up, workyard.cron_overlap, workyard.cron_timeout_ms, workyard.queue_timeout_ms, workyard.isolate, workyard.db_pool_size, workyard.upstreams.<name>)`;
    }
    return `  - ${key}: ${i.message}`;
  });
  return new ConfigError(`${file} has settings that cannot be used:\n${lines.join("\n")}`);
}

/** Reads and validates the top-level wrangler.toml. */
export async function readSharedConfig(file: string): Promise<SharedConfig> {
  const raw = await readToml(file);
  if (raw === undefined) throw new ConfigError(`${file} is missing: it holds the compatibility date every function uses`);
  const parsed = sharedConfigSchema.safeParse(raw);
  if (!parsed.success) throw explain(file, parsed.error);
  return parsed.data;
}

/** Reads and validates a function's own wrangler.toml; an absent file is an empty config. */
export async function readFunctionConfig(file: string): Promise<FunctionConfig> {
  const raw = await readToml(file);
  if (raw === undefined) return {};
  const parsed = functionConfigSchema.safeParse(raw);
  if (!parsed.success) throw explain(file, parsed.error);
  return parsed.data;
}

const unique = (items: string[]) => [...new Set(items)];

/** The function's route options over the shared ones. */
export function mergeRouteOptions(shared: SharedConfig, own: FunctionConfig): RouteOptions {
  const { upstreams: _shared, ...sharedOptions } = shared.workyard;
  const { upstreams: _own, ...ownOptions } = own.workyard ?? {};
  return { ...sharedOptions, ...ownOptions };
}

/** The upstream tables of both files, the function's keys over the shared ones, upstream by upstream. */
export function mergeUpstreams(shared: SharedConfig, own: FunctionConfig): UpstreamTables {
  const merged: UpstreamTables = { ...shared.workyard.upstreams };
  for (const [name, settings] of Object.entries(own.workyard?.upstreams ?? {})) merged[name] = { ...merged[name], ...settings };
  return merged;
}

/** A failover circle among the upstream tables, as a ConfigError naming the file. */
export function checkUpstreams(file: string, tables: UpstreamTables): void {
  for (const name of Object.keys(tables)) {
    const chain = failoverChain(name, tables);
    if ("problem" in chain) throw new ConfigError(`${file}: ${chain.problem}; remove one of the failover keys`);
  }
}

/**
 * The function's settings over the shared ones: vars merge key by key, flags, secrets and crons add up. An assets
 * folder is resolved against `dir`, the function's folder.
 */
export function mergeConfig(name: string, main: string, shared: SharedConfig, own: FunctionConfig, dir = dirname(main)): MergedConfig {
  const upstreams = mergeUpstreams(shared, own);
  const secrets = unique([...(shared.secrets?.required ?? []), ...(own.secrets?.required ?? [])]);
  const crons = unique([...(shared.triggers?.crons ?? []), ...(own.triggers?.crons ?? [])]);
  return {
    name,
    main,
    compatibility_date: own.compatibility_date ?? shared.compatibility_date,
    compatibility_flags: unique([...shared.compatibility_flags, ...(own.compatibility_flags ?? [])]),
    minify: shared.minify,
    keep_names: shared.keep_names,
    upload_source_maps: shared.upload_source_maps,
    vars: { ...shared.vars, ...own.vars, ...(Object.keys(upstreams).length > 0 ? { [UPSTREAMS_VAR]: upstreams } : {}) },
    ...(secrets.length > 0 ? { secrets: { required: secrets } } : {}),
    ...(crons.length > 0 ? { triggers: { crons } } : {}),
    ...(own.queues ? { queues: own.queues } : {}),
    ...(own.assets ? { assets: { ...own.assets, directory: resolve(dir, own.assets.directory) } } : {}),
    ...(own.services ? { services: own.services } : {}),
  };
}
