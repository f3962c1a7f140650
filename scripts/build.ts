/**
 * npm run build: bundle every function with Wrangler into a release folder and print what it holds.
 * Exits non-zero, naming the function and Wrangler's message, when a function fails to bundle.
 */
import { unsetEnvWarnings } from "../lib/node/build/env-reads.ts";
import { queueWarnings } from "../lib/node/queues/config.ts";
import { build } from "../lib/node/build/build.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

const { values } = cliArgs(
  { options: { force: { type: "boolean" } } },
  "usage: npm run build [-- --force]\n  Runs each function's [build] command, bundles every function into a release folder (reused when nothing changed) and lists it.\n  --force   rebuild every bundle, ignoring the bundle cache",
);

const force = values.force === true;
await runCommand(async () => {
  const { releaseDir, manifest, reused, ms } = await build(projectPaths(process.env.WORKYARD_ROOT), { force, log: console.log });
  console.log(`${reused ? "unchanged, reusing" : "built"} release ${manifest.id} in ${Math.round(ms)} ms: ${releaseDir}`);
  for (const fn of manifest.functions) {
    console.log(`  ${fn.route.padEnd(24)} ${(fn.bytes / 1024).toFixed(0).padStart(5)} KiB  ${fn.sha256.slice(0, 12)}`);
  }
  for (const line of [...unsetEnvWarnings(manifest.functions), ...queueWarnings(manifest.functions)]) console.warn(line);
});
