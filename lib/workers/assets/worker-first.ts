/**
 * Wrangler's `assets.run_worker_first`: true runs the function before any asset, a list of path patterns for the paths
 * they match ("/api/*"; `*` matches anything, "/" included), where a pattern with "!" excludes paths ("!/api/docs/*")
 * and wins over the others.
 */
const compiled = new Map<string, RegExp>();

function regex(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    const source = pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    compiled.set(pattern, (re = new RegExp(`^${source}$`)));
  }
  return re;
}

/** Whether the function's code answers `path` before the assets are looked at. */
export function runsWorkerFirst(rule: boolean | string[], path: string): boolean {
  if (typeof rule === "boolean") return rule;
  let first = false;
  for (const pattern of rule) {
    if (pattern.startsWith("!")) {
      if (regex(pattern.slice(1)).test(path)) return false;
    } else if (!first && regex(pattern).test(path)) first = true;
  }
  return first;
}
