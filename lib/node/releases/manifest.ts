/**
 * The release manifest: what a release folder holds (functions, routes, settings, content hashes). The
 * workerd config is generated from it alone, so a release can be served, compared or rolled back to
 * without the sources.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { HTML_HANDLING, NOT_FOUND_HANDLING } from "../../shared/assets.ts";

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_CRON_TIMEOUT_MS = 15 * 60_000;

/** A queue binding a function sends to: `env[binding].send()` stores in `queue`. */
export const queueProducerSchema = z.object({
  binding: z.string(),
  queue: z.string(),
  /** Seconds every message waits before delivery, unless send() says otherwise. */
  deliveryDelay: z.number().int().nonnegative(),
});
export type QueueProducer = z.infer<typeof queueProducerSchema>;

/** A queue a function consumes, with Cloudflare's defaults applied (lib/node/queues/config.ts). */
export const queueConsumerSchema = z.object({
  queue: z.string(),
  maxBatchSize: z.number().int().positive(),
  maxBatchTimeoutMs: z.number().int().nonnegative(),
  maxRetries: z.number().int().nonnegative(),
  deadLetterQueue: z.string().optional(),
  retryDelay: z.number().int().nonnegative(),
  /** Batches of this queue delivered at once, per node. */
  maxConcurrency: z.number().int().positive(),
  /** How long one queue() call may take: the lease on its batch. */
  timeoutMs: z.number().int().positive(),
});
export type QueueConsumer = z.infer<typeof queueConsumerSchema>;

/** A function's static assets: how to route them and every file, stored in the release under `assets/<name>/`. */
export const assetsEntrySchema = z.object({
  /** The binding its code reaches them by (env.ASSETS.fetch), if it declares one. */
  binding: z.string().optional(),
  htmlHandling: z.enum(HTML_HANDLING),
  notFoundHandling: z.enum(NOT_FOUND_HANDLING),
  /** The function runs before any asset (true), for the paths these patterns match, or never first (false). */
  runWorkerFirst: z.union([z.boolean(), z.array(z.string())]),
  /** True for a function of assets alone (no code): not-found handling applies to every request, not page loads only. */
  assetsOnly: z.boolean().optional(),
  files: z.record(
    z.string(),
    z.object({
      etag: z.string().regex(/^[0-9a-f]{32}$/),
      type: z.string(),
      size: z.number().int().nonnegative(),
      br: z.number().int().nonnegative().optional(),
      gz: z.number().int().nonnegative().optional(),
      immutable: z.boolean().optional(),
    }),
  ),
});
export type AssetsEntry = z.infer<typeof assetsEntrySchema>;

const moduleSchema = z.object({
  /** Path of the bundle relative to the release folder. */
  module: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  compatibilityDate: z.string(),
  compatibilityFlags: z.array(z.string()),
});

export const functionEntrySchema = moduleSchema.extend({
  name: z.string(),
  route: z.string(),
  binding: z.string(),
  vars: z.record(z.string(), z.unknown()),
  secrets: z.array(z.string()),
  /** Names its code requires through defineEnv that neither a var nor a declared secret sets (build/env-reads.ts). */
  unsetEnv: z.array(z.string()).optional(),
  crons: z.array(z.string()),
  cron: z.object({ catchUp: z.boolean(), overlap: z.boolean(), timeoutMs: z.number().int().positive() }),
  timeoutMs: z.number().int().positive(),
  maxBodyBytes: z.number().int().positive(),
  /** False: HTTP requests run in the gateway's isolate (crons still run in the function's own worker). */
  isolate: z.boolean(),
  /** Size of the function host's database pool per process; 0: a connection per request, no host object. */
  dbPool: z.number().int().nonnegative(),
  /** Queues it sends to and consumes; absent in releases built before queues. */
  queues: z.object({ producers: z.array(queueProducerSchema), consumers: z.array(queueConsumerSchema) }).optional(),
  /** Its static assets; absent when it has none. */
  assets: assetsEntrySchema.optional(),
  /** Its service bindings to other functions ([[services]]): each reaches the gateway's FunctionCall entrypoint. */
  services: z.array(z.object({ binding: z.string(), service: z.string() })).optional(),
});
export type FunctionEntry = z.infer<typeof functionEntrySchema>;

export const manifestSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  createdAt: z.string(),
  sourceHash: z.string(),
  /** The git commit the release was built from (null outside git); absent in releases built before it was recorded. */
  git: z.object({ commit: z.string(), dirty: z.boolean() }).nullable().optional(),
  /**
   * What the release was built with. Its workerd is kept in the folder (release-runtime.ts) and serves it; absent in
   * releases built before they kept one, which run on the installed workerd.
   */
  runtime: z.object({ workerd: z.string(), node: z.string(), wrangler: z.string() }).optional(),
  gateway: moduleSchema,
  internal: moduleSchema,
  /**
   * The tail worker of releases built before functions made their own trace records (lib/workers/trace/): present
   * only in those, which are served with it attached to each function, as they were built to be.
   */
  tail: moduleSchema.optional(),
  /** The worker behind functions' assets bindings (lib/workers/assets/worker.ts); present when a function declares one. */
  assetsWorker: moduleSchema.optional(),
  functions: z.array(functionEntrySchema),
});
export type Manifest = z.infer<typeof manifestSchema>;

export const MANIFEST_FILE = "manifest.json";

/** Reads and validates a release's manifest. */
export async function readManifest(releaseDir: string): Promise<Manifest> {
  const file = join(releaseDir, MANIFEST_FILE);
  const parsed = manifestSchema.safeParse(JSON.parse(await readFile(file, "utf8")));
  if (!parsed.success) throw new Error(`${file} is not a valid release manifest; run npm run build again (${parsed.error.message})`);
  return parsed.data;
}

/** Writes a release's manifest. */
export async function writeManifest(releaseDir: string, manifest: Manifest): Promise<void> {
  await writeFile(join(releaseDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
}
