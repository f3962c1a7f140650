/**
 * Which [assets] folder a function's [build] command writes. Wrangler's [build] may build the code while [assets]
 * points at files kept in git (./public), or build the assets themselves (Vite's ./dist): a folder git ignores is
 * taken as built (an output, made again from its sources). Anything else, also outside a git checkout or without git,
 * is taken as sources: the safe side (a built folder counted as an input costs one more build; sources left out
 * would ship stale files).
 */
import { spawnSync } from "node:child_process";

/** Whether `dir`, the assets folder of a function with a [build] command, is what that command writes. */
export function isBuiltFolder(dir: string, root: string): boolean {
  // 0: ignored; 1: not ignored; anything else (no git, not a checkout): no answer.
  const result = spawnSync("git", ["check-ignore", "-q", "--no-index", dir], { cwd: root, stdio: "ignore" });
  return result.status === 0;
}
