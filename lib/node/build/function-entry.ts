/**
 * A function's entry module for its own worker in workerd: the function's own module as the default
 * export, each of its handlers recording its invocations (lib/workers/trace/function.ts: the worker makes its own
 * trace records, no tail worker), plus, when it has a database pool, the host object class that owns the pool and
 * serves its requests (lib/workers/function-host.ts). Cloudflare deploys keep the function's own index.ts.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FunctionSource } from "./functions.ts";
import { relativeImport } from "./relative-import.ts";
import { fileHash } from "./bundle-cache.ts";
import { routeSettings } from "./functions.ts";
import { DEFAULT_CRON_TIMEOUT_MS } from "../releases/manifest.ts";
import { DEFAULT_QUEUE_TIMEOUT_MS } from "../queues/config.ts";

/** The class name of the host object a pooled function's worker exports. */
export const HOST_CLASS = "FunctionHost";

/**
 * The generated entry's contents for `fn` (a pool of `poolSize`, 0 for none), importing relative to `fromDir` (where it
 * is written). `sourceHash`, the function's own entry file's hash, is written into it: the bundle cache keys bundles by
 * their entry file's content (bundle-cache.ts), so an edit undone finds its earlier bundle again.
 */
export function functionEntry(fromDir: string, root: string, fn: FunctionSource, poolSize: number, sourceHash = ""): string {
  const name = JSON.stringify(fn.name);
  // How long each kind of invocation may run: past it (and a grace), one still open is recorded as cancelled.
  const deadlines = {
    fetch: routeSettings(fn).timeoutMs,
    scheduled: fn.route.cron_timeout_ms ?? DEFAULT_CRON_TIMEOUT_MS,
    queue: fn.route.queue_timeout_ms ?? DEFAULT_QUEUE_TIMEOUT_MS,
  };
  const lib = (file: string) => JSON.stringify(relativeImport(fromDir, join(root, "lib/workers", file)));
  return [
    poolSize > 0
      ? `// Generated: functions/${fn.name} hosted with a database pool of ${poolSize} per workerd process, recording its own traces.`
      : `// Generated: functions/${fn.name}'s own worker, recording its own traces.`,
    `// functions/${fn.name}'s entry file: sha256 ${sourceHash}`,
    `import { tracedWorker } from ${lib("trace/function.ts")};`,
    ...(poolSize > 0 ? [`import { functionHost } from ${lib("function-host.ts")};`] : []),
    `import handler from ${JSON.stringify(relativeImport(fromDir, fn.entry))};`,
    `export default tracedWorker(handler, ${name}, ${JSON.stringify(deadlines)});`,
    ...(poolSize > 0
      ? [`export const ${HOST_CLASS} = functionHost(handler, { name: ${name}, poolSize: ${poolSize}, deadlineMs: ${deadlines.fetch} });`]
      : []),
    "",
  ].join("\n");
}

/** Writes the entry where Wrangler bundles it from; returns its path. */
export async function writeFunctionEntry(dir: string, root: string, fn: FunctionSource, poolSize: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${fn.name}.entry.ts`);
  await writeFile(file, functionEntry(dir, root, fn, poolSize, (await fileHash(fn.entry)) ?? ""));
  return file;
}
