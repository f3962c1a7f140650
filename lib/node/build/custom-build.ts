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

/** Runs a function's [build] command; throws a UserError with its output when it fails. Returns the time it took. */
export async function runCustomBuild(name: string, build: CustomBuild, root: string): Promise<number> {
  const started = performance.now();
  const result = await execa(build.command, {
    shell: true,
    cwd: build.cwd,
    reject: false,
    all: true,
    stdin: "ignore",
    // The project's own tools (vite, tsc) first, as npm scripts have them; NODE_ENV as a production build expects.
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
        `(${result.failed && result.exitCode === undefined ? "could not start" : `exit ${result.exitCode}`}):\n${output}\n` +
        `Run it there yourself to see the whole output; fix it, or remove [build] from functions/${name}/wrangler.toml.`,
    );
  }
  return performance.now() - started;
}
