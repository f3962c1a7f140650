/**
 * A function's entry module for workerd when it has a database pool: the function's own module as the
 * default export (HTTP through the host object, crons straight to it) plus the host object class that
 * owns the pool (lib/workers/function-host.ts). Cloudflare deploys keep the function's own index.ts.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FunctionSource } from "./functions.ts";
import { relativeImport } from "./relative-import.ts";

/** The class name of the host object a pooled function's worker exports. */
export const HOST_CLASS = "FunctionHost";

/** The generated entry's contents for `fn`, with a pool of `poolSize`, importing relative to `fromDir` (where it is written). */
export function functionEntry(fromDir: string, root: string, fn: FunctionSource, poolSize: number): string {
  return [
    `// Generated: functions/${fn.name} hosted with a database pool of ${poolSize} per workerd process.`,
    `import { functionHost } from ${JSON.stringify(relativeImport(fromDir, join(root, "lib/workers/function-host.ts")))};`,
    `import handler from ${JSON.stringify(relativeImport(fromDir, fn.entry))};`,
    "export default handler;",
    `export const ${HOST_CLASS} = functionHost(handler, { poolSize: ${poolSize} });`,
    "",
  ].join("\n");
}

/** Writes the entry where Wrangler bundles it from; returns its path. */
export async function writeFunctionEntry(dir: string, root: string, fn: FunctionSource, poolSize: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${fn.name}.host.ts`);
  await writeFile(file, functionEntry(dir, root, fn, poolSize));
  return file;
}
