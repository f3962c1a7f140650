/**
 * `npm test`: the unit and integration tiers in one vitest process and, at the same time, the `beside` files
 * (tests/run/tiers.ts) in another at a lower CPU priority. The first streams its output; the second's is printed
 * when both are done. Each process has its own backends (a fresh database, a private redis-server: tests/setup/
 * backends.ts), so neither sees the other's data. `plan` decides what runs; `runTests` runs it.
 */
import type { ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { setPriority } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnTied } from "../../lib/node/common/tied-child.ts";
import { BESIDE_FILES, PROJECTS } from "./tiers.ts";

export const USAGE = `usage: npm test [-- <vitest arguments>]

Runs the unit and integration tests (vitest). The integration files that use much CPU and no tight timing (other
runtimes side by side, Wrangler builds, --help: tests/run/tiers.ts) run at the same time in a second vitest process
at a lower CPU priority; its output follows the first's.

  npm test -- tests/integration/auth.test.ts   one file (or a filter on file names): only the process that has it
  npm test -- -t "rate limit"                  tests whose name matches
  npm test -- --project unit                   one group (unit, integration, beside) in one process
  npm test -- --help                           this text

With --project, --coverage, --outputFile or --reporter, one vitest process runs everything, one group after the
other. Env: TEST_DATABASE_URL, TEST_DATABASE=embedded, TEST_REDIS_URL, TEST_REDIS=memory, CI=true
(docs/development.md).`;

/** How much lower the beside process runs (nice), so that it mostly takes CPU the timing tests leave. */
const BESIDE_NICENESS = 10;
/** After a vitest process exits, how long its last output may take to arrive (a leaked child can hold the pipe). */
const OUTPUT_GRACE_MS = 5000;

const root = fileURLToPath(new URL("../../", import.meta.url));
const vitest = join(root, "node_modules/vitest/vitest.mjs");

/** vitest options that take a value (the next argument is theirs, not a file filter). */
const VALUE_OPTIONS = new Set([
  "-t",
  "--testNamePattern",
  "--project",
  "--reporter",
  "--outputFile",
  "--shard",
  "-c",
  "--config",
  "-r",
  "--root",
  "--dir",
  "--exclude",
  "--maxWorkers",
  "--testTimeout",
  "--hookTimeout",
  "--retry",
  "--bail",
  "--pool",
  "--environment",
]);
/** Options whose output two processes would both write, or that name their own group: one process runs all. */
const ONE_PROCESS = ["--project", "--coverage", "--outputFile", "--reporter"];

/** What `npm test <args>` runs: the vitest argument lists of the processes, the second (if any) niced. */
export type Plan = { help: true } | { main?: string[]; beside?: string[] };

/** The arguments that are file filters (vitest matches them as substrings of a test file's path). */
function fileFilters(args: string[]): string[] {
  const out: string[] = [];
  for (const [i, arg] of args.entries()) {
    const previous = args[i - 1];
    if (!arg.startsWith("-") && !(previous !== undefined && VALUE_OPTIONS.has(previous))) out.push(arg);
  }
  return out;
}

/** Decides what runs, given the test files there are (paths from the project root). */
export function plan(args: string[], testFiles: string[]): Plan {
  if (args.includes("--help") || args.includes("-h")) return { help: true };
  if (args.some((a) => ONE_PROCESS.some((o) => a === o || a.startsWith(`${o}=`)))) return { main: args };
  const main = ["--project", PROJECTS.unit, "--project", PROJECTS.integration, ...args];
  const beside = ["--project", PROJECTS.beside, ...args];
  const filters = fileFilters(args);
  if (filters.length === 0) return { main, beside };
  const matched = testFiles.filter((f) => filters.some((filter) => f.includes(filter)));
  const besideMatched = matched.some((f) => BESIDE_FILES.includes(f));
  const mainMatched = matched.some((f) => !BESIDE_FILES.includes(f));
  // No file matches: one process, which says so and fails, as vitest alone would.
  if (!besideMatched && !mainMatched) return { main };
  return { ...(mainMatched ? { main } : {}), ...(besideMatched ? { beside } : {}) };
}

/** Every *.test.ts under tests/, as paths from the project root. */
function testFiles(): string[] {
  return readdirSync(join(root, "tests"), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".test.ts"))
    .map((e) => relative(root, join(e.parentPath, e.name)).split("\\").join("/"));
}

interface Run {
  child: ChildProcess;
  done: Promise<number>;
  output: () => string;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

function run(args: string[], capture: boolean): Run {
  // Tied: if npm test is killed outright, its vitest processes go too.
  const child = spawnTied(process.execPath, [vitest, "run", ...args], {
    stdio: capture ? ["ignore", "pipe", "pipe"] : "inherit",
    env: capture && process.stdout.isTTY ? { ...process.env, FORCE_COLOR: "1" } : process.env,
  });
  const chunks: Buffer[] = [];
  child.stdout?.on("data", (c: Buffer) => chunks.push(c));
  child.stderr?.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<number>((resolve) => {
    let code = 1;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      clearTimeout(timer);
      resolve(code);
    };
    // "exit" can come before the last output is read: wait for the pipes to close ("close"), a little while at most.
    child.once("exit", (exitCode, signal) => {
      code = exitCode ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 0) : 0);
      timer = setTimeout(finish, OUTPUT_GRACE_MS);
    });
    child.once("close", finish);
    child.once("error", (err) => {
      chunks.push(Buffer.from(`could not start vitest: ${err.message}\n`));
      finish();
    });
  });
  return { child, done, output: () => Buffer.concat(chunks).toString() };
}

export async function runTests(args: string[]): Promise<number> {
  const chosen = plan(args, testFiles());
  if ("help" in chosen) {
    console.log(USAGE);
    return 0;
  }
  const runs: Run[] = [];
  const forward = (signal: NodeJS.Signals) => runs.forEach((r) => r.child.kill(signal));
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    const started = Date.now();
    // Started first, so that it is niced before it starts anything.
    const beside = chosen.beside ? run(chosen.beside, chosen.main !== undefined) : undefined;
    if (beside) runs.push(beside);
    if (beside?.child.pid !== undefined && chosen.main) {
      try {
        setPriority(beside.child.pid, BESIDE_NICENESS);
      } catch {
        // Not allowed here: it runs at the same priority, only slower for the timing tests beside it.
      }
    }
    const main = chosen.main ? run(chosen.main, false) : undefined;
    if (main) runs.push(main);
    if (!main || !beside) return (await (main ?? beside)?.done) ?? 0;
    const mainCode = await main.done;
    const mainSeconds = (Date.now() - started) / 1000;
    if (beside.child.exitCode === null && beside.child.signalCode === null)
      console.log(`\nwaiting for the files run beside (vitest --project ${PROJECTS.beside}) ...`);
    const besideCode = await beside.done;
    const besideSeconds = (Date.now() - started) / 1000;
    process.stdout.write(`\n== run beside, at a lower CPU priority (vitest --project ${PROJECTS.beside})\n${beside.output()}`);
    console.log(
      `\nunit + integration: ${mainSeconds.toFixed(0)} s, exit ${mainCode}; beside: ${besideSeconds.toFixed(0)} s, exit ${besideCode}`,
    );
    return mainCode !== 0 ? mainCode : besideCode;
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
  }
}
