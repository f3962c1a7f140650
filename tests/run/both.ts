/**
 * `npm test`: the unit and integration tiers in one vitest process and, at the same time, the `beside` files
 * (tests/run/tiers.ts) in another at a lower CPU priority. The first streams its output; the second's is printed
 * when both are done. Each process has its own backends (a fresh database, a private redis-server: tests/setup/
 * backends.ts), so neither sees the other's data. With --project, one vitest process runs what it names.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { setPriority } from "node:os";
import { fileURLToPath } from "node:url";
import { PROJECTS } from "./tiers.ts";

export const USAGE = `usage: npm test [-- <vitest arguments>]

Runs the unit and integration tests (vitest). The integration files that use much CPU and check no timing (other
runtimes side by side, Wrangler builds, --help: tests/run/tiers.ts) run at the same time in a second vitest process
at a lower CPU priority; its output follows the first's.

  npm test -- tests/integration/auth.test.ts   one file (or a filter on file names)
  npm test -- -t "rate limit"                  tests whose name matches
  npm test -- --project unit                   one group (unit, integration, beside) in one process
  npm test -- --help                           this text

Env: TEST_DATABASE_URL, TEST_DATABASE=embedded, TEST_REDIS_URL, TEST_REDIS=memory, CI=true (docs/development.md).`;

/** How much lower the beside process runs (nice), so that it only takes CPU the timing tests leave. */
const BESIDE_NICENESS = 10;

const vitest = fileURLToPath(new URL("../../node_modules/vitest/vitest.mjs", import.meta.url));

interface Run {
  child: ChildProcess;
  done: Promise<number>;
  output: () => string;
}

function run(args: string[], capture: boolean): Run {
  const child = spawn(process.execPath, [vitest, "run", ...args], {
    stdio: capture ? ["ignore", "pipe", "pipe"] : "inherit",
    env: capture && process.stdout.isTTY ? { ...process.env, FORCE_COLOR: "1" } : process.env,
  });
  const chunks: Buffer[] = [];
  child.stdout?.on("data", (c: Buffer) => chunks.push(c));
  child.stderr?.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<number>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.once("error", (err) => {
      chunks.push(Buffer.from(`could not start vitest: ${err.message}\n`));
      resolve(1);
    });
  });
  return { child, done, output: () => Buffer.concat(chunks).toString() };
}

export async function runTests(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const runs: Run[] = [];
  const forward = (signal: NodeJS.Signals) => runs.forEach((r) => r.child.kill(signal));
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    if (args.some((a) => a === "--project" || a.startsWith("--project="))) {
      const only = run(args, false);
      runs.push(only);
      return await only.done;
    }
    // With a filter, one of the two may find no file of its own: that is not a failure.
    const filtered = args.length > 0 ? ["--passWithNoTests"] : [];
    const started = Date.now();
    const beside = run(["--project", PROJECTS.beside, ...filtered, ...args], true);
    runs.push(beside);
    if (beside.child.pid !== undefined) {
      try {
        setPriority(beside.child.pid, BESIDE_NICENESS);
      } catch {
        // Not allowed here: it runs at the same priority, only slower for the timing tests beside it.
      }
    }
    const main = run(["--project", PROJECTS.unit, "--project", PROJECTS.integration, ...filtered, ...args], false);
    runs.push(main);
    const mainCode = await main.done;
    const mainSeconds = (Date.now() - started) / 1000;
    if (beside.child.exitCode === null) console.log(`\nwaiting for the files run beside (vitest --project ${PROJECTS.beside}) ...`);
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
