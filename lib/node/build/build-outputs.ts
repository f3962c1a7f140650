/**
 * Which [assets] folder a function's [build] command writes. Wrangler's [build] may build the code while [assets]
 * points at files kept in git (./public), or build the assets themselves (Vite's ./dist): a folder git ignores is
 * taken as built (an output, made again from its sources), one it tracks as sources. Outside a git checkout, a
 * function with [build] is taken to build its assets folder.
 */
import { spawnSync } from "node:child_process";

/** Whether `dir`, the assets folder of a function with a [build] command, is what that command writes. */
export function isBuiltFolder(dir: string, root: string): boolean {
  // 0: ignored; 1: not ignored; anything else (no git, not a checkout): no answer.
  const result = spawnSync("git", ["check-ignore", "-q", "--no-index", dir], { cwd: root, stdio: "ignore" });
  return result.status !== 1;
}
