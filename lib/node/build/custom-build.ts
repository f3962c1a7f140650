/**
 * Wrangler's custom builds ([build] command = "vite build"): the command runs in the function's folder before the
 * function is bundled and its assets stored, as `wrangler deploy` runs it before uploading. The merged config handed
 * to Wrangler leaves [build] out, so the bundling step does not run it a second time.
 */
import { delimiter, join, relative } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { execa } from "execa";
import { UserError } from "../common/user-error.ts";
import type { CustomBuild } from "./functions.ts";

/** The last lines of a failed build's output: where the reason usually is. */
const TAIL_LINES = 40;

/** A build that runs longer is stopped and reported (a command waiting for input, a watcher started by mistake). */
export const BUILD_TIMEOUT_MS = 10 * 60_000;

/** What became of a failed command, in words. */
function outcome(result: { timedOut: boolean; signal?: string | undefined; exitCode?: number | undefined }): string {
  if (result.timedOut) return `did not finish within ${BUILD_TIMEOUT_MS / 60_000} minutes and was stopped`;
  if (result.signal) return `was stopped by ${result.signal}`;
  if (result.exitCode === 127) return "exit 127: the shell did not find the command";
  return result.exitCode === undefined ? "could not start" : `exit ${result.exitCode}`;
}

/**
 * Runs a function's [build] command; throws a UserError with its output when it fails. Returns the time it took.
 * NODE_ENV is "production" under npm run dev too: the same sources then build the same files whichever command
 * built them (npm run build while npm run dev serves the folder leaves it as it was).
 */
export async function runCustomBuild(name: string, build: CustomBuild, root: string): Promise<number> {
  const started = performance.now();
  const result = await execa(build.command, {
    shell: true,
    cwd: build.cwd,
    reject: false,
    all: true,
    stdin: "ignore",
    timeout: BUILD_TIMEOUT_MS,
    // The project's own tools (vite, tsc) first, as npm scripts have them.
    env: { PATH: [join(root, "node_modules/.bin"), process.env.PATH ?? ""].join(delimiter), NODE_ENV: "production", FORCE_COLOR: "0" },
  });
  if (result.exitCode !== 0) {
    const output = stripVTControlCharacters(result.all ?? "")
      .trim()
      .split("\n")
      // A native tool's backtrace without symbols (rolldown's) says nothing.
      .filter((line) => !/^\s*\d+: <unknown>$/.test(line))
      .slice(-TAIL_LINES)
      .join("\n");
    throw new UserError(
      `Function "${name}": its [build] command \`${build.command}\` failed in ${relative(root, build.cwd) || "."} ` +
        `(${outcome(result)}):\n${output}\n` +
        `Run it there yourself to see the whole output; fix it, or remove [build] from functions/${name}/wrangler.toml.`,
    );
  }
  return performance.now() - started;
}
