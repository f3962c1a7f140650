/**
 * npm run bench: the project's benchmark. Runs each setup one after another on loopback, with autocannon
 * in this process as the load generator, and prints throughput, latency and the ratios the design targets
 * as Markdown tables; writes them to .workyard/bench/latest.json. Information, not a gate: exits 0 whether
 * or not a target is met, non-zero only when a setup could not be run.
 *
 * The memory row (workerd RSS with 1 and with 50 functions) runs after the throughput rows, or alone with
 * `--only memory`. The plain-worker rows price workerd itself; `--workerd <path>` (repeatable) runs them on another
 * workerd binary too, side by side with the installed one (an upgrade's before and after in one run), and
 * `--instructions` runs them under valgrind's callgrind, which counts workerd's instructions per request: the figure
 * to compare two binaries by on a noisy machine.
 *
 *   npm run bench -- [--duration 8] [--warmup 2] [--connections 32] [--rounds 1] [--only <substring>] [--workerd <path>]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { execa } from "execa";
import { build } from "../lib/node/build/build.ts";
import { databaseBench } from "../lib/node/bench/database.ts";
import { memoryBench, memoryTable } from "../lib/node/bench/memory.ts";
import type { MemoryReport } from "../lib/node/bench/memory.ts";
import { helloBench } from "../lib/node/bench/hello.ts";
import { compare, instructionsTable, ratioTable, resultsTable } from "../lib/node/bench/report.ts";
import { redisBench } from "../lib/node/bench/redis.ts";
import { runScenarios } from "../lib/node/bench/runner.ts";
import { checkValgrind, describeBinary, runtimeCostBench } from "../lib/node/bench/runtime-cost.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import { workerdPackageBinary as workerdBinary } from "../lib/node/ops/toolchain/versions.ts";

const usage =
  "usage: npm run bench -- [--duration SECONDS] [--warmup SECONDS] [--connections N] [--rounds N] [--only SUBSTRING] [--workerd PATH ...]\n" +
  "  --workerd PATH   also run the plain-worker rows on this workerd binary (repeatable)\n" +
  "  --instructions   run the plain-worker rows under valgrind (callgrind) and count workerd's instructions per request";

function positiveNumber(name: string, text: string, { integer = false, min = 0 } = {}): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    console.error(`--${name} must be ${integer ? "an integer" : "a number"} >= ${min}, not "${text}"\n${usage}`);
    process.exit(2);
  }
  return value;
}

let args;
try {
  args = parseArgs({
    options: {
      duration: { type: "string", default: "8" },
      warmup: { type: "string", default: "2" },
      connections: { type: "string", default: "32" },
      rounds: { type: "string", default: "1" },
      only: { type: "string" },
      workerd: { type: "string", multiple: true },
      instructions: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
} catch (err) {
  console.error(`${(err as Error).message}\n${usage}`);
  process.exit(2);
}
if (args.help) {
  console.log(usage);
  process.exit(0);
}
const load = {
  durationSeconds: positiveNumber("duration", args.duration, { min: 1 }),
  warmupSeconds: positiveNumber("warmup", args.warmup),
  connections: positiveNumber("connections", args.connections, { integer: true, min: 1 }),
  rounds: positiveNumber("rounds", args.rounds, { integer: true, min: 1 }),
};

const controller = new AbortController();
let firstSignalAt = 0;
const onSignal = (signal: NodeJS.Signals) => {
  if (controller.signal.aborted) {
    // Ctrl-C reaches this process twice (from the terminal and relayed by npm): only a later one forces it.
    // workerd children are killed on exit either way (startWorkerd's exit hook, execa's cleanup).
    if (Date.now() - firstSignalAt > 2000) process.exit(130);
    return;
  }
  firstSignalAt = Date.now();
  console.error(`\n${signal}: stopping the current setup (again to quit at once)...`);
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

const log = (line: string) => console.log(line);
const paths = projectPaths();
try {
  const release = await build(paths);
  log(`${release.reused ? "sources unchanged, using" : "built"} release ${release.manifest.id} (${Math.round(release.ms)} ms)`);

  const bench = helloBench({ paths, release, onLine: (source, line) => console.error(`  [${source}] ${line}`) });
  const databaseRows = await databaseBench({ paths, log, onLine: (source, line) => console.error(`  [${source}] ${line}`) });
  bench.scenarios.push(...databaseRows.scenarios);
  bench.comparisons.push(...databaseRows.comparisons);
  const redisRows = await redisBench({ paths, log, onLine: (source, line) => console.error(`  [${source}] ${line}`) });
  bench.scenarios.push(...redisRows.scenarios);
  bench.comparisons.push(...redisRows.comparisons);
  const binaries = await Promise.all([workerdBinary(), ...(args.workerd ?? [])].map(describeBinary));
  if (args.instructions) await checkValgrind();
  const plainRows = runtimeCostBench({ paths, binaries, instructions: args.instructions, onLine: (source, line) => console.error(`  [${source}] ${line}`) });
  bench.scenarios.push(...plainRows.scenarios);
  bench.comparisons.push(...plainRows.comparisons);
  const scenarios = args.only === undefined ? bench.scenarios : bench.scenarios.filter((s) => s.name.includes(args.only ?? ""));
  const withMemory = args.only === undefined || "memory".includes(args.only);
  if (scenarios.length === 0 && !withMemory) {
    console.error(`--only "${args.only}" matches no setup; setups are:\n${bench.scenarios.map((s) => `  ${s.name}`).join("\n")}`);
    process.exit(2);
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
  if (load1 > 0.5) log("WARNING: this machine is busy; these numbers are not comparable with a run on an idle one.");
  log("");

  const { results, failures } = await runScenarios(scenarios, { ...load, signal: controller.signal, log });
  if (controller.signal.aborted) {
    console.error("aborted: every setup was stopped; no results written");
    process.exit(130);
  }
  const ratios = compare(results, bench.comparisons);
  let memory: MemoryReport | undefined;
  if (withMemory) {
    try {
      memory = await memoryBench(paths, log, (line) => console.error(`  [workerd memory] ${line}`));
    } catch (err) {
      failures.push({ name: "memory", error: (err as Error).message });
    }
  }

  log("");
  log(resultsTable(results));
  log("");
  const counted = instructionsTable(results);
  if (counted) log(`${counted}\n`);
  log(ratioTable(ratios));
  log("");
  if (memory) {
    log(memoryTable(memory));
    log("");
  }
  log(
    `${load.connections} connections, ${load.warmupSeconds} s warmup + ${load.durationSeconds} s measured per setup, one setup at a time` +
      `${load.rounds > 1 ? `, median of ${load.rounds} rounds (non-200/errors summed over all)` : ""}; p50/p99 at autocannon's 1 ms resolution.`,
  );

  const out = join(paths.work, "bench", "latest.json");
  await mkdir(join(paths.work, "bench"), { recursive: true });
  await writeFile(
    out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        release: release.manifest.id,
        machine: { cores, cpu: cpus()[0]?.model ?? null, node: process.version, workerd: workerdVersion, loadAverageBefore: load1 },
        load,
        only: args.only ?? null,
        results,
        comparisons: ratios,
        memory: memory ?? null,
        failures,
      },
      null,
      2,
    )}\n`,
  );
  log(`results written to ${out}`);

  if (failures.length > 0) {
    console.error(`\n${failures.length} setup(s) could not be run:\n${failures.map((f) => `  ${f.name}: ${f.error}`).join("\n")}`);
    process.exitCode = 1;
  }
} catch (err) {
  console.error(`\nbench failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
