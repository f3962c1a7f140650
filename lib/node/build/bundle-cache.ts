/**
 * Bundles kept between builds, so that a build after an edit runs Wrangler (about 2 s of CPU each) only for the
 * bundles whose inputs changed. An entry holds a bundle's files and what went into it: the Wrangler config it
 * was made from, the locked dependencies, and every project file esbuild read (from Wrangler's `--metafile`)
 * with its content hash. It is used only when all of them are unchanged; files under node_modules are covered
 * by the lock file's hash. Inputs are recorded relative to the project, so a copied or moved project checks its own
 * files, never the folder it was copied from (a copy once reused the original's bundles and deployed stale code).
 * Each bundle keeps its last MAX_ENTRIES entries, one per key (<name>/<key prefix>/): going back to an earlier entry
 * file, or a gateway that holds another set of functions, finds its bundle again instead of replacing the one entry.
 */
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { z } from "zod";

const entrySchema = z.object({
  key: z.string(),
  module: z.string(),
  /** Path relative to the project → sha256 of each project file the bundle was made from. */
  inputs: z.record(z.string(), z.string()),
  /** 2: inputs relative to the project (entries of version 1 held absolute paths and are not used). */
  version: z.literal(2),
});

/** Entries kept per bundle name, the most recently written. */
const MAX_ENTRIES = 8;

const metafileSchema = z.object({ inputs: z.record(z.string(), z.unknown()) });

const sha256 = (bytes: string | Buffer) => createHash("sha256").update(bytes).digest("hex");

/** A file's sha256, or undefined when it cannot be read. */
export async function fileHash(file: string): Promise<string | undefined> {
  return readFile(file).then(sha256, () => undefined);
}

/**
 * What a bundle depends on besides its source files: the config Wrangler reads, its entry file's content (which also
 * names the entry the bundle is kept under) and the locked dependencies. Less the config's `vars`: they are bindings,
 * never part of the bundle (the same bytes whatever their values), so a changed var does not run Wrangler again.
 */
export async function bundleKey(configFile: string, lockHash: string): Promise<string> {
  const { vars: _vars, ...config } = JSON.parse(await readFile(configFile, "utf8")) as Record<string, unknown>;
  const main = typeof config.main === "string" ? await fileHash(resolve(dirname(configFile), config.main)) : undefined;
  return sha256(`${JSON.stringify(config)}\0${main ?? ""}\0${lockHash}`);
}

/** The folder of the entry for `key`. */
const entryDir = (cacheDir: string, name: string, key: string) => join(cacheDir, name, key.slice(0, 16));

/**
 * Wrangler writes a bundle's source map with its output folder as `sourceRoot` (the sources are relative to it): a
 * restored copy gets the folder it is restored to, as a fresh Wrangler run would write it, so its sources resolve to
 * this project's files, not to those of the project (or the copy) that made the bundle.
 */
async function rootSourceMap(file: string, outDir: string): Promise<void> {
  const map = JSON.parse(await readFile(file, "utf8")) as { sourceRoot?: unknown };
  if (typeof map.sourceRoot !== "string" || map.sourceRoot === outDir) return;
  await writeFile(file, JSON.stringify({ ...map, sourceRoot: outDir }));
}

/**
 * Copies the cached bundle of `name` into `outDir` when nothing that went into it changed; returns its module, or
 * undefined. Another build may replace the entry meanwhile (builds at once, or projects sharing a cache): an entry
 * that changed during the copy, or a copy that failed, is a miss, never a mix of two bundles.
 */
export async function restoreBundle(
  cacheDir: string,
  name: string,
  key: string,
  outDir: string,
  root: string,
): Promise<string | undefined> {
  const dir = entryDir(cacheDir, name, key);
  const entryText = () => readFile(join(dir, "entry.json"), "utf8").catch(() => undefined);
  const text = await entryText();
  let json: unknown;
  try {
    json = text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined; // half-written by a build that died: made again
  }
  const parsed = entrySchema.safeParse(json);
  if (!parsed.success || parsed.data.key !== key) return undefined;
  for (const [file, hash] of Object.entries(parsed.data.inputs)) {
    if (isAbsolute(file) || (await fileHash(resolve(root, file))) !== hash) return undefined;
  }
  try {
    await mkdir(outDir, { recursive: true });
    for (const file of await readdir(join(dir, "files"))) {
      await cp(join(dir, "files", file), join(outDir, file));
      if (file.endsWith(".map")) await rootSourceMap(join(outDir, file), outDir);
    }
    if ((await entryText()) === text) return parsed.data.module;
  } catch {
    // replaced or removed while being copied
  }
  await rm(outDir, { recursive: true, force: true });
  return undefined;
}

/**
 * Keeps the bundle Wrangler just wrote to `outDir`, with the inputs its metafile lists (paths relative to
 * `metafileBase`, the folder of the config Wrangler read), relative to the project `root`. A cache that cannot be
 * written only costs the next build time.
 */
export async function storeBundle(
  cacheDir: string,
  name: string,
  key: string,
  outDir: string,
  module: string,
  metafile: string,
  metafileBase: string,
  root: string,
): Promise<void> {
  const meta = metafileSchema.safeParse(await readFile(metafile, "utf8").then(JSON.parse, () => undefined));
  if (!meta.success) return;
  const inputs: Record<string, string> = {};
  for (const input of Object.keys(meta.data.inputs)) {
    const file = resolve(metafileBase, input);
    if (file.split(/[\\/]/).includes("node_modules")) continue;
    const hash = await fileHash(file);
    if (hash === undefined) {
      if (existsSync(file)) return; // unreadable: do not cache what cannot be checked
      continue; // a virtual module of esbuild's or Wrangler's
    }
    inputs[relative(root, file)] = hash;
  }
  const dir = entryDir(cacheDir, name, key);
  const staging = `${dir}.tmp-${process.pid}-${randomUUID()}`;
  try {
    await cp(outDir, join(staging, "files"), { recursive: true });
    await writeFile(join(staging, "entry.json"), `${JSON.stringify({ key, module, inputs, version: 2 }, null, 2)}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  await prune(join(cacheDir, name));
}

/**
 * Keeps the MAX_ENTRIES most recently written entries of one bundle; removes what an older layout left there (one
 * entry.json and files/ per name). Leaves the staging folders of builds in progress alone.
 */
async function prune(nameDir: string): Promise<void> {
  await rm(join(nameDir, "entry.json"), { force: true });
  const folders = (await readdir(nameDir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.includes(".tmp-"));
  const written = await Promise.all(
    folders.map(async (d) => ({
      dir: join(nameDir, d.name),
      at: (await stat(join(nameDir, d.name, "entry.json")).catch(() => undefined))?.mtimeMs ?? 0,
    })),
  );
  written.sort((a, b) => b.at - a.at);
  for (const old of written.slice(MAX_ENTRIES)) await rm(old.dir, { recursive: true, force: true });
  for (const stale of written.filter((w) => w.at === 0)) await rm(stale.dir, { recursive: true, force: true });
}
