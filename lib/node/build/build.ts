/**
 * The build: discover functions, bundle each one separately with Wrangler, bundle the gateway, and write
 * an immutable release folder named by the hash of its sources:
 *   .workyard/releases/<id>/{manifest.json, workerd.capnp, gateway/gateway.js, functions/<name>/index.js(.map)}
 * Unchanged sources reuse the existing release, so `npm start` only rebuilds when something changed.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import pLimit from "p-limit";
import { requiredEnv, unsetEnv } from "./env-reads.ts";
import { BundleError, bundlePlatformWorker, bundleWorker, linkLocalSecrets, writeAssetsOnlyConfig, writeWranglerConfig } from "./bundle.ts";
import { fileHash } from "./bundle-cache.ts";
import { checkCrons } from "../cron/crons.ts";
import { checkQueues, functionQueues } from "../queues/config.ts";
import { gitCommit } from "./git-commit.ts";
import { sourceHash } from "./release-inputs.ts";
import { discoverFunctions, routeSettings } from "./functions.ts";
import type { FunctionSource } from "./functions.ts";
import { DEFAULT_CRON_TIMEOUT_MS, MANIFEST_FILE, readManifest, writeManifest } from "../releases/manifest.ts";
import type { AssetsEntry, FunctionEntry, Manifest } from "../releases/manifest.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { UserError } from "../common/user-error.ts";
import { CONFIG_FILE, serveConfig } from "./serve-config.ts";
import { serializeConfig } from "./workerd-config.ts";
import { gatewayEntry, inlineFunctions } from "./gateway-entry.ts";
import { writeFunctionEntry } from "./function-entry.ts";
import { writeDenoTargets } from "./deno-target.ts";
import { ConfigError, readSharedConfig } from "./wrangler-config.ts";
import { withNodejsCompat } from "./nodejs-compat.ts";
import { installedRuntime, keepWorkerd } from "../releases/runtime.ts";
import type { AssetsConfig, MergedConfig } from "./wrangler-config.ts";
import { storeAssets } from "./assets.ts";
import { runCustomBuild } from "./custom-build.ts";

export interface BuildResult {
  releaseDir: string;
  manifest: Manifest;
  /** True when the sources were unchanged and an existing release was used. */
  reused: boolean;
  ms: number;
}

export class BuildError extends UserError {
  readonly failures: BundleError[];

  constructor(failures: BundleError[]) {
    super(
      `${failures.length} function${failures.length === 1 ? "" : "s"} failed to bundle:\n\n` + failures.map((f) => f.message).join("\n\n"),
    );
    this.failures = failures;
  }
}

export { sourceHash };

/** An assets folder's control files Cloudflare applies and this build does not read. */
const NOT_APPLIED = ["_headers", "_redirects"];

/** A release's id (and folder name): the start of its sources' hash. */
export function releaseId(hash: string): string {
  return hash.slice(0, 12);
}

async function describeModule(releaseDir: string, module: string, config: MergedConfig) {
  const bytes = await readFile(join(releaseDir, module));
  return {
    module,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    bytes: (await stat(join(releaseDir, module))).size,
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
  };
}

/** Builds a release for the current sources, or returns the existing one when nothing changed. */
export async function build(
  paths: ProjectPaths,
  { force = false, log }: { force?: boolean; log?: (line: string) => void } = {},
): Promise<BuildResult> {
  const started = performance.now();
  const hash = await sourceHash(paths);
  const id = releaseId(hash);
  const releaseDir = join(paths.releases, id);
  if (!force && existsSync(join(releaseDir, MANIFEST_FILE))) {
    return { releaseDir, manifest: await readManifest(releaseDir), reused: true, ms: performance.now() - started };
  }

  const shared = await readSharedConfig(paths.sharedConfig);
  const functions = await discoverFunctions(paths.functions, paths.sharedConfig);
  checkCrons(functions.map((f) => ({ name: f.name, crons: f.config.triggers?.crons ?? [] })));
  checkQueues(
    functions.map((f) => ({ name: f.name, vars: f.config.vars, secrets: f.config.secrets?.required ?? [], queues: functionQueues(f) })),
  );
  for (const f of functions) {
    if (f.config.assets?.binding && f.route.isolate === false) {
      throw new ConfigError(
        `functions/${f.name}/wrangler.toml: [assets] binding needs the function's own isolate (its assets worker is bound to it); remove isolate = false, or the binding`,
      );
    }
  }
  // Custom builds first ([build], custom-build.ts): they write what the function's assets folder serves.
  for (const f of functions) {
    if (!f.build) continue;
    log?.(`  ${f.name}: ${f.build.command}...`);
    const ms = await runCustomBuild(f.name, f.build, paths.root);
    log?.(`  ${f.name}: built in ${(ms / 1000).toFixed(1)} s`);
  }
  // Cloudflare applies these two files of an assets folder; here they are not read yet: say so, not silently differ.
  for (const f of functions) {
    const dir = f.config.assets?.directory;
    const unread = dir ? NOT_APPLIED.filter((name) => existsSync(join(dir, name))) : [];
    if (unread.length > 0) {
      log?.(
        `  functions/${f.name}: ${unread.join(" and ")} in its assets folder ${unread.length === 1 ? "is not applied here (Cloudflare applies it)" : "are not applied here (Cloudflare applies them)"}: ` +
          "set those headers or redirects in the function's code (docs/assets.md)",
      );
    }
  }
  // Deno runs the functions' own sources: its targets are written here, not bundled.
  await writeDenoTargets(paths, functions);
  const gatewayEntryFile = await writeGatewayEntry(paths, shared.compatibility_date, functions);
  await linkLocalSecrets(paths.wranglerConfigs, paths.root);
  const gatewayConfig: MergedConfig = {
    name: "_gateway",
    main: gatewayEntryFile.file,
    compatibility_date: shared.compatibility_date,
    // Functions in the gateway's isolate run under its flags: the union of theirs.
    compatibility_flags: gatewayEntryFile.flags,
    minify: true,
    keep_names: shared.keep_names,
    upload_source_maps: true,
    vars: {},
  };

  const internalConfig: MergedConfig = {
    ...gatewayConfig,
    name: "_internal",
    main: join(paths.root, "lib/workers/internal.ts"),
    // Lets this worker call a function's scheduled() through a service binding (needs workerd --experimental).
    // Node.js built-ins: its /readyz checks the database with postgres.js.
    compatibility_flags: withNodejsCompat(shared.compatibility_date, ["service_binding_extra_handlers"]),
  };

  // Behind the assets bindings functions declare (env.ASSETS.fetch): made only when one does.
  const assetsWorkerConfig: MergedConfig | undefined = functions.some((f) => f.config.assets?.binding)
    ? { ...gatewayConfig, name: "_assets", main: join(paths.root, "lib/workers/assets/worker.ts"), compatibility_flags: [] }
    : undefined;

  const staging = join(paths.releases, `.staging-${id}-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const limit = pLimit(Math.max(1, availableParallelism()));
  // --force makes every bundle again; otherwise Wrangler runs only for bundles whose inputs changed.
  const cache = force ? undefined : { dir: paths.bundleCache, lockHash: (await fileHash(join(paths.root, "package-lock.json"))) ?? "" };
  // A function's worker is bundled from a generated entry that records its invocations itself, and adds its host
  // object when it has a database pool (function-entry.ts); the config for Cloudflare (<name>.json) keeps the
  // function's own entry. (A function in the gateway's isolate has its own worker too: its crons and queue
  // deliveries run there.) A function of assets alone is bundled with the platform's 404 as its code; for
  // Cloudflare it has none (an assets-only Worker).
  const functionJobs = await Promise.all(
    functions.map(async (f) => {
      if (f.assetsOnly) {
        await writeAssetsOnlyConfig(paths.wranglerConfigs, f.config);
        return { name: f.name, config: f.config, out: `functions/${f.name}`, file: `${f.name}.assets-only.json` };
      }
      await writeWranglerConfig(paths.wranglerConfigs, f.config);
      const main = await writeFunctionEntry(paths.wranglerConfigs, paths.root, f, routeSettings(f).dbPool);
      const config = { ...f.config, main, compatibility_flags: workerFlags(f) };
      return { name: f.name, config, out: `functions/${f.name}`, file: `${f.name}.entry.json` };
    }),
  );
  // The gateway is bundled by Wrangler like a function: it holds the functions that run in its isolate.
  const jobs: { name: string; config: MergedConfig; out: string; file?: string; platform?: boolean }[] = [
    { name: "_gateway", config: gatewayConfig, out: "gateway" },
    { name: "_internal", config: internalConfig, out: "internal", platform: true },
    ...(assetsWorkerConfig ? [{ name: "_assets", config: assetsWorkerConfig, out: "assets-worker", platform: true }] : []),
    ...functionJobs,
  ];
  log?.(
    `building release ${id}: ${functions.length} function${functions.length === 1 ? "" : "s"} and the platform's workers, ${limit.concurrency} at a time...`,
  );
  let done = 0;
  try {
    const results = await Promise.allSettled(
      jobs.map((job) =>
        limit(async () => {
          const jobStarted = performance.now();
          let file: string;
          if (job.platform) file = await bundlePlatformWorker(job.name, job.config, join(staging, job.out), paths.root);
          else {
            const configFile = await writeWranglerConfig(paths.wranglerConfigs, job.config, job.file);
            file = await bundleWorker(job.name, configFile, join(staging, job.out), paths.logs, paths.root, cache);
          }
          log?.(`  [${++done}/${jobs.length}] ${job.name.replace(/^_/, "")} (${((performance.now() - jobStarted) / 1000).toFixed(1)} s)`);
          return `${job.out}/${file}`;
        }),
      ),
    );
    const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    if (failures.length > 0) {
      if (failures.every((f) => f instanceof BundleError)) throw new BuildError(failures);
      throw failures[0];
    }
    const modules = results.map((r) => (r.status === "fulfilled" ? r.value : ""));
    const assetsWorker = assetsWorkerConfig ? { config: assetsWorkerConfig, module: modules.splice(2, 1)[0] ?? "" } : undefined;
    const manifest = await writeRelease(
      staging,
      id,
      hash,
      { gateway: gatewayConfig, internal: internalConfig },
      functions,
      modules,
      await gitCommit(paths.root),
      assetsWorker,
    );
    await rm(releaseDir, { recursive: true, force: true });
    await rename(staging, releaseDir);
    return { releaseDir, manifest, reused: false, ms: performance.now() - started };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Stores a function's assets in the release (assets.ts) and describes them for the manifest, Wrangler's defaults applied. */
async function assetsEntry(name: string, config: AssetsConfig, staging: string, assetsOnly = false): Promise<AssetsEntry> {
  const stored = await storeAssets(name, config, staging);
  return {
    ...(assetsOnly ? { assetsOnly: true } : {}),
    ...(config.binding ? { binding: config.binding } : {}),
    htmlHandling: config.html_handling ?? "auto-trailing-slash",
    notFoundHandling: config.not_found_handling ?? "none",
    runWorkerFirst: config.run_worker_first ?? false,
    files: stored.files,
  };
}

/** Writes the gateway's entry module (see gateway-entry.ts) where Wrangler bundles it from. */
async function writeGatewayEntry(
  paths: ProjectPaths,
  compatibilityDate: string,
  functions: FunctionSource[],
): Promise<{ file: string; flags: string[] }> {
  const entry = gatewayEntry(paths.root, compatibilityDate, inlineFunctions(functions), paths.wranglerConfigs);
  await mkdir(paths.wranglerConfigs, { recursive: true });
  const file = join(paths.wranglerConfigs, "_gateway.entry.ts");
  await writeFile(file, entry.contents);
  return { file, flags: entry.compatibilityFlags };
}

/**
 * The flags a function's worker runs with: its own, and Node.js built-ins, which its generated entry records its
 * invocations with (as the gateway's isolate has them for the functions in it). The 404 of assets alone needs none.
 */
function workerFlags(f: FunctionSource): string[] {
  if (f.assetsOnly) return f.config.compatibility_flags;
  return withNodejsCompat(f.config.compatibility_date, f.config.compatibility_flags);
}

async function writeRelease(
  staging: string,
  id: string,
  hash: string,
  system: { gateway: MergedConfig; internal: MergedConfig },
  functions: FunctionSource[],
  [gatewayModule = "", internalModule = "", ...functionModules]: string[],
  git: Manifest["git"],
  assetsWorker?: { config: MergedConfig; module: string },
): Promise<Manifest> {
  const entries: FunctionEntry[] = [];
  for (const [i, f] of functions.entries()) {
    entries.push({
      ...routeSettings(f),
      route: `/${f.name}`,
      ...(await describeModule(staging, functionModules[i] ?? "", { ...f.config, compatibility_flags: workerFlags(f) })),
      vars: f.config.vars,
      secrets: f.config.secrets?.required ?? [],
      unsetEnv: unsetEnv(await requiredEnv(f.dir), f.config.vars, f.config.secrets?.required ?? []),
      crons: f.config.triggers?.crons ?? [],
      cron: {
        catchUp: f.route.cron_catch_up ?? false,
        overlap: f.route.cron_overlap ?? false,
        timeoutMs: f.route.cron_timeout_ms ?? DEFAULT_CRON_TIMEOUT_MS,
      },
      ...(f.config.queues ? { queues: functionQueues(f) } : {}),
      ...(f.config.assets ? { assets: await assetsEntry(f.name, f.config.assets, staging, f.assetsOnly) } : {}),
      ...(f.config.services ? { services: f.config.services } : {}),
    });
  }
  await keepWorkerd(staging);
  const manifest: Manifest = {
    version: 1,
    id,
    createdAt: new Date().toISOString(),
    sourceHash: hash,
    git,
    runtime: installedRuntime(),
    gateway: await describeModule(staging, gatewayModule, system.gateway),
    internal: await describeModule(staging, internalModule, system.internal),
    ...(assetsWorker ? { assetsWorker: await describeModule(staging, assetsWorker.module, assetsWorker.config) } : {}),
    functions: entries,
  };
  await writeManifest(staging, manifest);
  // The address is a default: `npm start` hands workerd its socket (--socket-fd) or overrides it.
  await writeFile(
    join(staging, CONFIG_FILE),
    serializeConfig(serveConfig(manifest, { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" })),
  );
  return manifest;
}
