/**
 * Bundling one worker with Wrangler (`wrangler deploy --dry-run --outdir`): one ES module plus its source
 * map, exactly what `wrangler deploy` would upload to Cloudflare. The platform's own workers (internal,
 * tail), which never go to Cloudflare, are bundled with esbuild directly: a Wrangler run costs about 2 s
 * of CPU, most of it loading Wrangler, and they need none of what Wrangler adds.
 */
import { mkdir, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join, relative } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { build as esbuild } from "esbuild";
import { execa } from "execa";
import { UserError } from "../common/user-error.ts";
import { bundleKey, restoreBundle, storeBundle } from "./bundle-cache.ts";
import { hasNodejsCompat } from "./nodejs-compat.ts";
import { runtimeModules } from "./runtime-modules.ts";
import type { MergedConfig } from "./wrangler-config.ts";

const wranglerBin = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");

export class BundleError extends UserError {
  readonly functionName: string;
  readonly wranglerOutput: string;

  constructor(functionName: string, wranglerOutput: string) {
    super(`Function "${functionName}" failed to bundle:\n${wranglerOutput}`);
    this.functionName = functionName;
    this.wranglerOutput = wranglerOutput;
  }
}

/**
 * Writes the merged config as Wrangler JSON beside the others, with `main` relative to the file. `fileName`
 * defaults to `<name>.json`, the config `wrangler deploy -c` reads for Cloudflare.
 */
export async function writeWranglerConfig(dir: string, config: MergedConfig, fileName = `${config.name}.json`): Promise<string> {
  const file = join(dir, fileName);
  await mkdir(dir, { recursive: true });
  const main = relative(dir, config.main);
  await writeFile(file, `${JSON.stringify({ ...config, main }, null, 2)}\n`);
  return file;
}

/** The config for Cloudflare of a function of assets alone: no `main`, as `wrangler deploy` takes an assets-only Worker. */
export async function writeAssetsOnlyConfig(dir: string, config: MergedConfig): Promise<string> {
  const file = join(dir, `${config.name}.json`);
  await mkdir(dir, { recursive: true });
  const { main: _main, ...rest } = config;
  await writeFile(file, `${JSON.stringify(rest, null, 2)}\n`);
  return file;
}

/**
 * Plain `wrangler dev -c .workyard/wrangler/<name>.json` reads `.dev.vars` (or `.env`) beside the config, not at the
 * project root where they are kept: a link to each (even before the file exists) gives it the same secrets as
 * `npm run dev`, without copying a secret anywhere.
 */
export async function linkLocalSecrets(dir: string, root: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of [".dev.vars", ".env"]) {
    const link = join(dir, name);
    const target = relative(dir, join(root, name));
    if ((await readlink(link).catch(() => undefined)) === target) continue;
    await rm(link, { force: true });
    await symlink(target, link);
  }
}

/** Keeps what Wrangler said about the failure and drops its banner and log-file notice. */
function wranglerMessage(output: string, configDir: string, root: string): string {
  // Paths in esbuild's messages are relative to the merged config's folder; make them relative to the project.
  const fromConfig = `${relative(configDir, root)}/`;
  const lines = stripVTControlCharacters(output)
    .replaceAll(fromConfig, "")
    .split("\n")
    .filter((l) => !/⛅️ wrangler|^─+$|update available|Logs were written to|If you think this is a bug/.test(l));
  return lines.join("\n").trim();
}

export interface BundleCache {
  /** Where bundles are kept between builds (bundle-cache.ts). */
  dir: string;
  /** Hash of package-lock.json: a changed dependency makes every bundle again. */
  lockHash: string;
}

/**
 * Bundles the worker described by `configFile` into `outDir`, or copies the bundle an earlier build made from
 * the same inputs; returns the bundle's file name (a source map sits beside it).
 */
export async function bundleWorker(
  name: string,
  configFile: string,
  outDir: string,
  logDir: string,
  root: string,
  cache?: BundleCache,
): Promise<string> {
  if (!cache) return runWrangler(name, configFile, outDir, logDir, root);
  const key = await bundleKey(configFile, cache.lockHash);
  const cached = await restoreBundle(cache.dir, name, key, outDir, root);
  if (cached) return cached;
  await mkdir(cache.dir, { recursive: true });
  const metafile = join(cache.dir, `${name}.metafile.json`);
  const module = await runWrangler(name, configFile, outDir, logDir, root, metafile);
  await storeBundle(cache.dir, name, key, outDir, module, metafile, dirname(configFile), root).catch(() => undefined);
  await rm(metafile, { force: true });
  return module;
}

/** `wrangler deploy --dry-run` into `outDir` (and esbuild's metafile to `metafile`); returns the bundle's file name. */
async function runWrangler(
  name: string,
  configFile: string,
  outDir: string,
  logDir: string,
  root: string,
  metafile?: string,
): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const result = await execa(
    process.execPath,
    [wranglerBin, "deploy", "--dry-run", "--outdir", outDir, "-c", configFile, ...(metafile ? ["--metafile", metafile] : [])],
    {
      reject: false,
      all: true,
      env: { WRANGLER_SEND_METRICS: "false", WRANGLER_LOG_PATH: logDir, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdin: "ignore",
    },
  );
  if (result.exitCode !== 0) throw new BundleError(name, wranglerMessage(result.all ?? "", dirname(configFile), root));
  await rm(join(outDir, "README.md"), { force: true }); // Wrangler's note about the dry run
  const modules = (await readdir(outDir)).filter((f) => /\.m?js$/.test(f));
  if (modules.length !== 1 || !modules[0]) {
    throw new BundleError(name, `expected one bundled module in ${outDir}, found: ${modules.join(", ") || "none"}`);
  }
  return modules[0];
}

/**
 * Bundles one of the platform's workers (an entry in lib/workers) with esbuild into `outDir`, the way
 * Wrangler would for workerd: ES module, workerd's export conditions, Node.js built-ins and `cloudflare:` modules
 * left to the runtime (runtime-modules.ts). Returns the bundle's file name (a source map sits beside it).
 */
export async function bundlePlatformWorker(name: string, config: MergedConfig, outDir: string, root: string): Promise<string> {
  const entry = config.main;
  const file = `${basename(entry).replace(/\.ts$/, "")}.js`;
  const result = await esbuild({
    entryPoints: [entry],
    outfile: join(outDir, file),
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    plugins: [runtimeModules(hasNodejsCompat(config.compatibility_date, config.compatibility_flags))],
    minify: true,
    sourcemap: "external",
    sourceRoot: root,
    logLevel: "silent",
  }).catch((err: unknown) => {
    throw new BundleError(name, (err as Error).message);
  });
  if (result.errors.length > 0) throw new BundleError(name, result.errors.map((e) => e.text).join("\n"));
  return file;
}
