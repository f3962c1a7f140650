/**
 * What goes into a release, and so into its id: a release is reused only while none of these changed. The list is
 * explicit on purpose: a folder glob over lib/node once left out files moved into subfolders and took in files that
 * never ship (backups, the dev server). tests/unit/release-inputs.test.ts checks that every module the build imports is
 * covered, so a new build module outside these paths fails a test instead of going unnoticed.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join, relative, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import type { ProjectPaths } from "../common/paths.ts";

/** Code that runs inside workerd: the SDK functions import, the platform's own workers, names both sides share. */
export const WORKER_CODE = ["lib/sdk", "lib/workers", "lib/shared"] as const;

/**
 * Node-side code whose output is in the release: the build itself (bundling, the generated entries and workerd
 * config) and the modules it takes the manifest's shape, cron checks and the kept workerd from. Paths from the
 * project root; a folder ends with "/".
 */
export const BUILD_CODE = [
  "lib/node/build/",
  "lib/node/releases/manifest.ts",
  "lib/node/releases/runtime.ts",
  "lib/node/cron/crons.ts",
  "lib/node/queues/config.ts",
  "lib/node/ops/toolchain/versions.ts",
  "lib/node/common/paths.ts",
  "lib/node/common/user-error.ts",
] as const;

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/**
 * The asset folders functions declare outside their own folder ([assets] directory = "../../web/dist"): their files
 * are in the release too. A wrangler.toml that cannot be read here is left to the build, which says what is wrong.
 */
async function assetFolders(functionsDir: string): Promise<string[]> {
  if (!existsSync(functionsDir)) return [];
  const folders: string[] = [];
  for (const entry of await readdir(functionsDir, { withFileTypes: true })) {
    const dir = join(functionsDir, entry.name);
    const file = join(dir, "wrangler.toml");
    if (!entry.isDirectory() || !existsSync(file)) continue;
    try {
      const directory = (parseToml(await readFile(file, "utf8")) as { assets?: { directory?: unknown } }).assets?.directory;
      if (typeof directory === "string") folders.push(resolve(dir, directory));
    } catch {
      // not valid TOML: the build reports it
    }
  }
  return folders;
}

/** Every file that goes into a release of this project, as absolute paths. */
export async function releaseInputs(paths: ProjectPaths): Promise<string[]> {
  const platform = [...WORKER_CODE.map((dir) => `${dir}/`), ...BUILD_CODE];
  const files = [
    ...(await filesUnder(paths.functions)),
    ...(await Promise.all((await assetFolders(paths.functions)).map(filesUnder))).flat(),
    ...(await Promise.all(platform.map((p) => (p.endsWith("/") ? filesUnder(join(paths.root, p)) : [join(paths.root, p)])))).flat(),
    paths.sharedConfig,
    join(paths.root, "package-lock.json"),
  ];
  return [...new Set(files)].filter((f) => existsSync(f));
}

/** Hash of everything that goes into a release: each file's path (from the root) and bytes. */
export async function sourceHash(paths: ProjectPaths): Promise<string> {
  const hash = createHash("sha256");
  for (const file of (await releaseInputs(paths)).map((f) => relative(paths.root, f)).sort()) {
    hash.update(`${file}\0`);
    hash.update(await readFile(join(paths.root, file)));
    hash.update("\0");
  }
  return hash.digest("hex");
}
