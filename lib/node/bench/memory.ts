/**
 * The memory row: workerd's resident memory (RSS, from /proc) serving a release with 1 function and one with
 * 50, each function in its own isolate (the default), every one called once so that it has served a request.
 * (RSS50 - RSS1) / 49 is what one more function costs; the design's target is <= 8 MB.
 * The two projects are generated under .workyard/bench/ and kept, so a second run reuses their releases.
 */
import { readFile, rm, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { build } from "../build/build.ts";
import { projectPaths } from "../common/paths.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { linkBenchProject } from "./project.ts";
import { serveWorkerd } from "./servers.ts";

export const MEMORY_TARGET_MB_PER_FUNCTION = 8;

export interface MemoryResult {
  functions: number;
  rssMb: number;
}

export interface MemoryReport {
  results: MemoryResult[];
  /** (RSS with the most functions - RSS with one) / (the difference in functions). */
  mbPerFunction: number;
  target: number;
  result: "PASS" | "ABOVE TARGET";
}

/** A small function like the ones people write: a Hono app with a route, a var and a validated parameter. */
const source = (n: number) => `// Written by the bench: function ${n} of the memory row.
import { z } from "zod";
import { createApp } from "#workyard/app";
import { validate } from "#workyard/validate";

const app = createApp();
app.get("/", (c) => c.json({ fn: ${n}, requestId: c.get("requestId") }));
app.get("/items/:id", validate("param", z.object({ id: z.coerce.number().int() })), (c) => c.json({ fn: ${n}, id: c.req.valid("param").id }));
export default app;
`;

/** Writes .workyard/bench/memory-<count>-project with `count` generated functions and builds it. */
async function buildProject(paths: ProjectPaths, count: number) {
  const root = join(paths.work, "bench", `memory-${count}-project`);
  const names = Array.from({ length: count }, (_, i) => `fn${String(i + 1).padStart(2, "0")}`);
  await rm(join(root, "functions"), { recursive: true, force: true });
  for (const [i, name] of names.entries()) {
    await mkdir(join(root, "functions", name), { recursive: true });
    await writeFile(join(root, "functions", name, "index.ts"), source(i + 1));
  }
  await linkBenchProject(paths, root);
  return { release: await build(projectPaths(root)), names };
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS for process ${pid} (this row needs Linux /proc)`);
  return kb / 1024;
}

/** Serves the project's release on one workerd process, calls every function, and reads the process's RSS. */
async function measure(paths: ProjectPaths, count: number, onLine: (line: string) => void): Promise<MemoryResult> {
  const { release, names } = await buildProject(paths, count);
  const running = await serveWorkerd({ configDir: release.releaseDir, path: "/", onLine });
  try {
    for (const name of names) {
      const res = await fetch(`${running.url}${name}/items/7`);
      if (res.status !== 200) throw new Error(`/${name}/items/7 answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    }
    // Let the allocator settle after the first requests.
    await new Promise((r) => setTimeout(r, 500));
    return { functions: count, rssMb: await rssMb(running.pids[0] ?? -1) };
  } finally {
    await running.stop();
  }
}

/** RSS with 1 and with `many` functions, and the cost of each added function. */
export async function memoryBench(
  paths: ProjectPaths,
  log: (line: string) => void,
  onLine: (line: string) => void,
  many = 50,
): Promise<MemoryReport> {
  log(`> memory: building and serving 1 and ${many} functions (the first run bundles ${many + 1} functions)`);
  const one = await measure(paths, 1, onLine);
  const all = await measure(paths, many, onLine);
  const mbPerFunction = (all.rssMb - one.rssMb) / (many - 1);
  return {
    results: [one, all],
    mbPerFunction,
    target: MEMORY_TARGET_MB_PER_FUNCTION,
    result: mbPerFunction <= MEMORY_TARGET_MB_PER_FUNCTION ? "PASS" : "ABOVE TARGET",
  };
}

/** functions | workerd RSS MB, then the per-function line. */
export function memoryTable(report: MemoryReport): string {
  const rows = report.results.map((r) => `| ${String(r.functions).padStart(9)} | ${r.rssMb.toFixed(1).padStart(15)} |`);
  return [
    "| functions | workerd RSS, MB |",
    "|----------:|----------------:|",
    ...rows,
    "",
    `each added function: ${report.mbPerFunction.toFixed(2)} MB (target <= ${report.target} MB): ${report.result}`,
  ].join("\n");
}
