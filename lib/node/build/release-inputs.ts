/**
 * What goes into a release, and so into its id: a release is reused only while none of these changed. The list is
 * explicit on purpose: a folder glob over lib/node once left out files moved into subfolders and took in files that
 * never ship (backups, the dev server). tests/unit/release-inputs.test.ts checks that every module the build imports is
 * covered, so a new build module outside these paths fails a test instead of going unnoticed.
 */
import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join, relative, resolve, sep } from "node:path";
import { parse as parseToml } from "smol-toml";
import type { ProjectPaths } from "../common/paths.ts";
import { isBuiltFolder } from "./build-outputs.ts";

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

/** The files under a folder, or the file itself (a [build]'s watch_dir may name files). */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  if (!(await stat(dir)).isDirectory()) return [dir];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/**
 * The asset folders functions declare ([assets] directory = "./public", or outside their folder: "../../web/dist"),
 * and whether a [build] command writes them (build-outputs.ts); and the folders a [build] watches (its sources). A
 * folder with files kept in git is an input like the function's own files; a built one is an output (its sources are
 * the inputs), left out so that building it does not change the release's id. A wrangler.toml that cannot be read
 * here is left to the build, which says what is wrong.
 */
async function assetFolders(functionsDir: string, root: string): Promise<{ dir: string; built: boolean }[]> {
  if (!existsSync(functionsDir)) return [];
  const folders: { dir: string; built: boolean }[] = [];
  for (const entry of await readdir(functionsDir, { withFileTypes: true })) {
    const dir = join(functionsDir, entry.name);
    const file = join(dir, "wrangler.toml");
    if (!entry.isDirectory() || !existsSync(file)) continue;
    try {
      const config = parseToml(await readFile(file, "utf8")) as {
        assets?: { directory?: unknown };
        build?: { cwd?: unknown; watch_dir?: unknown };
      };
      const directory = config.assets?.directory;
      if (typeof directory === "string") {
        const assets = resolve(dir, directory);
        folders.push({ dir: assets, built: config.build !== undefined && isBuiltFolder(assets, root) });
      }
      // A build's sources may live outside the function's folder (watch_dir = "../../web/src"): inputs too, unless
      // the folder holds the project itself (watch_dir = "../.." would hash node_modules and the releases).
      const watched = config.build?.watch_dir ?? "./src";
      for (const source of [watched].flat()) {
        if (typeof source !== "string") continue;
        const folder = resolve(dir, source);
        if (!root.startsWith(folder + sep) && folder !== root) folders.push({ dir: folder, built: false });
      }
    } catch {
      // not valid TOML: the build reports it
    }
  }
  return folders;
}

/** Every file that goes into a release of this project, as absolute paths. */
export async function releaseInputs(paths: ProjectPaths): Promise<string[]> {
  const platform = [...WORKER_CODE.map((dir) => `${dir}/`), ...BUILD_CODE];
  const folders = await assetFolders(paths.functions, paths.root);
  const outputs = folders.filter((f) => f.built).map((f) => f.dir + sep);
  const isOutput = (file: string) => outputs.some((out) => file.startsWith(out));
  const files = [
    // The functions and the folders they read from, less what their builds write.
    ...(await Promise.all([paths.functions, ...folders.filter((f) => !f.built).map((f) => f.dir)].map(filesUnder)))
      .flat()
      .filter((file) => !isOutput(file)),
    ...(await Promise.all(platform.map((p) => (p.endsWith("/") ? filesUnder(join(paths.root, p)) : [join(paths.root, p)])))).flat(),
    paths.sharedConfig,
    join(paths.root, "package-lock.json"),
    // What patch-package applies to the packages the bundles take in (postgres.js, @upstash/redis ...).
    ...(await filesUnder(join(paths.root, "patches"))),
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
