/**
 * One bench run: builds (or reuses) the release, gathers every setup (hello through the gateway and beside it, the
 * database and Redis reads, calls to an upstream with and without the outbound helper, workerd's own cost per request
 * on each binary), runs them one after another on loopback with autocannon, then the memory row, prints the tables
 * and writes .workyard/bench/latest.json. scripts/bench.ts parses the arguments and the signals;
 * docs/performance/README.md says what each row measures.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { build } from "../build/build.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { UserError } from "../common/user-error.ts";
import { workerdPackageBinary as workerdBinary } from "../ops/toolchain/versions.ts";
import { databaseBench } from "./database.ts";
import { helloBench } from "./hello.ts";
import { memoryBench, memoryTable } from "./memory.ts";
import { outboundBench } from "./outbound.ts";
import { apiSurfaceBench } from "./api-surface.ts";
import { assetsBench } from "./assets.ts";
import type { MemoryReport } from "./memory.ts";
import { queueBench, queueTable } from "./queues.ts";
import type { QueueBenchRow } from "./queues.ts";
import { redisBench } from "./redis.ts";
import { compare, instructionsTable, ratioTable, resultsTable } from "./report.ts";
import { runScenarios } from "./runner.ts";
import { checkValgrind, describeBinary, runtimeCostBench } from "./runtime-cost.ts";

/** Above this one-minute load average before a run, the machine is taken as busy (see compare in report.ts). */
const BUSY_LOAD = 0.5;

export interface BenchOptions {
  paths: ProjectPaths;
  load: { durationSeconds: number; warmupSeconds: number; connections: number; rounds: number };
  /** Only the setups whose name contains it ("memory" for the memory row alone). */
  only?: string;
  /** Other workerd binaries to run the plain-worker rows on, beside the installed one. */
  workerd?: string[];
  /** Count workerd's instructions per request under callgrind. */
  instructions?: boolean;
  signal: AbortSignal;
  log: (line: string) => void;
  /** A child process's line (a setup's server), for stderr. */
  onLine: (source: string, line: string) => void;
}

/** Runs the bench; answers "aborted" when the signal stopped it, else the number of setups that could not run. */
export async function runBench({
  paths,
  load,
  only,
  workerd = [],
  instructions = false,
  signal,
  log,
  onLine,
}: BenchOptions): Promise<{ aborted: boolean; failed: number }> {
  const release = await build(paths);
  log(`${release.reused ? "sources unchanged, using" : "built"} release ${release.manifest.id} (${Math.round(release.ms)} ms)`);

  const bench = helloBench({ paths, release, onLine });
  for (const rows of [
    await databaseBench({ paths, log, onLine }),
    await redisBench({ paths, log, onLine }),
    outboundBench({ paths, log, onLine }),
    await apiSurfaceBench({ paths, log, onLine }),
    assetsBench({ paths, log, onLine }),
  ]) {
    bench.scenarios.push(...rows.scenarios);
    bench.comparisons.push(...rows.comparisons);
  }
  const binaries = await Promise.all([workerdBinary(), ...workerd].map(describeBinary));
  if (instructions) await checkValgrind();
  const plainRows = runtimeCostBench({ paths, binaries, instructions, onLine });
  bench.scenarios.push(...plainRows.scenarios);
  bench.comparisons.push(...plainRows.comparisons);
  const scenarios = only === undefined ? bench.scenarios : bench.scenarios.filter((s) => s.name.includes(only));
  const withMemory = only === undefined || "memory".includes(only);
  const withQueues = only === undefined || "queues".includes(only);
  if (scenarios.length === 0 && !withMemory && !withQueues) {
    throw new UserError(`--only "${only}" matches no setup; setups are:\n${bench.scenarios.map((s) => `  ${s.name}`).join("\n")}`);
  }

  const cores = availableParallelism();
  const workerdVersion = (await execa(workerdBinary(), ["--version"], { reject: false })).stdout.trim();
  log(
    `\n${cores} cores (${cpus()[0]?.model ?? "unknown CPU"}), Node ${process.version}, ${workerdVersion}. ` +
      `The load generator (autocannon) runs in this process on loopback and takes one core; each setup gets the rest.`,
  );
  const [load1 = 0] = loadavg();
  log(`load average before the run: ${load1.toFixed(2)}`);
  // Anything else running competes for the same cores: throughput drops and the ratios get squeezed.
  const busy = load1 > BUSY_LOAD;
  if (busy) {
    log(
      "WARNING: this machine is busy; these numbers are not comparable with a run on an idle one. Targets are judged " +
        "by CPU per request (each side's own processes, from /proc), which holds better than throughput here.",
    );
  }
  log("");

  const { results, failures } = await runScenarios(scenarios, { ...load, signal, log });
  if (signal.aborted) return { aborted: true, failed: 0 };
  const ratios = compare(results, bench.comparisons, { busy });
  let memory: MemoryReport | undefined;
  if (withMemory) {
    try {
      memory = await memoryBench(paths, log, (line) => onLine("workerd memory", line));
    } catch (err) {
      failures.push({ name: "memory", error: (err as Error).message });
    }
  }

  let queueRows: QueueBenchRow[] = [];
  if (withQueues && !signal.aborted) {
    try {
      queueRows = await queueBench({ paths, log });
    } catch (err) {
      failures.push({ name: "queues", error: (err as Error).message });
    }
  }

  log("");
  // With --only queues (or memory) no HTTP setup ran: no empty tables.
  if (results.length > 0) {
    log(resultsTable(results));
    log("");
    const counted = instructionsTable(results);
    if (counted) log(`${counted}\n`);
    log(ratioTable(ratios));
    log(
      "rps ratio: a's throughput over b's; CPU ratio: b's CPU per request over a's. Each result says which it was " +
        `judged by: throughput on a quiet machine, CPU per request on a busy one (load average over ${BUSY_LOAD}).`,
    );
    log("");
  }
  if (memory) {
    log(memoryTable(memory));
    log("");
  }
  if (queueRows.length > 0) {
    log(queueTable(queueRows));
    log("");
  }
  log(
    `${load.connections} connections, ${load.warmupSeconds} s warmup + ${load.durationSeconds} s measured per setup, one setup at a time` +
      `${load.rounds > 1 ? `, median of ${load.rounds} rounds (other statuses/errors summed over all)` : ""}; p50/p99 at autocannon's 1 ms resolution.`,
  );

  const out = join(paths.work, "bench", "latest.json");
  await mkdir(join(paths.work, "bench"), { recursive: true });
  const machine = { cores, cpu: cpus()[0]?.model ?? null, node: process.version, workerd: workerdVersion, loadAverageBefore: load1 };
  const report = {
    date: new Date().toISOString(),
    release: release.manifest.id,
    machine,
    load,
    only: only ?? null,
    results,
    comparisons: ratios,
    memory: memory ?? null,
    queues: queueRows,
    failures,
  };
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  log(`results written to ${out}`);
  if (failures.length > 0)
    log(`\n${failures.length} setup(s) could not be run:\n${failures.map((f) => `  ${f.name}: ${f.error}`).join("\n")}`);
  return { aborted: false, failed: failures.length };
}
