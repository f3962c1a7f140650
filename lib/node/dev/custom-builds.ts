/**
 * `npm run dev`'s side of Wrangler's [build]: a function's command runs at start and again after a save under its
 * watch_dir (default ./src), as `wrangler dev` does; what it writes (the [assets] folder) is its output, never a save
 * to react to. A failing build is reported like a bundle error, and the files it left are served as they are.
 */
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import { isBuiltFolder } from "../build/build-outputs.ts";
import { runCustomBuild } from "../build/custom-build.ts";
import type { FunctionSource } from "../build/functions.ts";

const real = (path: string) => (existsSync(path) ? realpathSync(path) : path);
const under = (file: string, dir: string) => file === dir || file.startsWith(dir + sep);

/** The folders [build] commands write (build-outputs.ts), as real paths. */
export function buildOutputs(functions: FunctionSource[], root: string): string[] {
  return functions.flatMap((fn) =>
    fn.build && fn.config.assets && isBuiltFolder(fn.config.assets.directory, root) ? [real(fn.config.assets.directory)] : [],
  );
}

/** The functions whose [build] a save of these files (real paths) concerns. */
export function buildsConcerned(functions: FunctionSource[], files: string[]): FunctionSource[] {
  return functions.filter((fn) => fn.build && fn.build.watchDirs.some((dir) => files.some((file) => under(file, real(dir)))));
}

/** Runs these functions' [build] commands one after another; returns one message per failure, and how many built. */
export async function runBuilds(
  functions: FunctionSource[],
  root: string,
  log: (line: string) => void,
): Promise<{ errors: string[]; built: number }> {
  const errors: string[] = [];
  let built = 0;
  for (const fn of functions) {
    if (!fn.build) continue;
    try {
      const ms = await runCustomBuild(fn.name, fn.build, root);
      log(`built functions/${fn.name} (${fn.build.command}) in ${Math.round(ms)} ms`);
      built++;
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { errors, built };
}

/** True when `file` (a real path) is inside one of `outputs`. */
export const isBuildOutput = (outputs: string[], file: string) => outputs.some((dir) => under(file, dir));

/**
 * What the build outputs hold, as one string (each file's path, size and modification time): equal before and after
 * a batch of changes when those changes were this server's own build, seen late.
 */
export function outputsSignature(outputs: string[]): string {
  const lines: string[] = [];
  for (const dir of outputs) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const file = join(entry.parentPath, entry.name);
      const stat = statSync(file, { throwIfNoEntry: false });
      if (stat) lines.push(`${file}\0${stat.size}\0${stat.mtimeMs}`);
    }
  }
  return lines.sort().join("\n");
}
