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
import { parseArgs } from "node:util";
import { runBench } from "../lib/node/bench/run.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import { describeFailure } from "../lib/node/common/user-error.ts";

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

try {
  const { aborted, failed } = await runBench({
    paths: projectPaths(),
    load,
    only: args.only,
    workerd: args.workerd,
    instructions: args.instructions,
    signal: controller.signal,
    log: (line) => console.log(line),
    onLine: (source, line) => console.error(`  [${source}] ${line}`),
  });
  if (aborted) console.error("aborted: every setup was stopped; no results written");
  process.exitCode = aborted ? 130 : failed > 0 ? 1 : 0;
} catch (err) {
  console.error(`\nbench failed: ${describeFailure(err)}`);
  process.exitCode = 1;
}
