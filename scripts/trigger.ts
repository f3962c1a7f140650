/**
 * npm run trigger -- <function> [cron]: fires a function's scheduled() now, through the running
 * supervisor (so the run is recorded like any other), and prints the outcome. Exits 1 unless it was ok.
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { controlRequest, readControlInfo } from "../lib/node/control/control.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import type { CronRun } from "../lib/node/cron/scheduler.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const usage = 'usage: npm run trigger -- <function> ["<cron>"]';
const { positionals } = cliArgs({ allowPositionals: true }, usage);
const [fn, cron] = positionals;
if (!fn) {
  console.error(usage);
  process.exit(2);
}
await runCommand(async () => {
  const control = await readControlInfo(projectPaths(process.env.WORKYARD_ROOT).controlInfo);
  const { run } = await controlRequest<{ run?: CronRun }>(control, "POST", "/trigger", { function: fn, cron });
  // An ok answer without a run (the control endpoint answers a trigger 200).
  if (!run) throw new Error("the supervisor answered 200");
  const ms = run.finishedAt ? new Date(run.finishedAt).getTime() - new Date(run.startedAt).getTime() : 0;
  console.log(`${fn} "${run.cron}": ${run.status} in ${ms} ms${run.error ? ` (${run.error})` : ""}`);
  return run.status === "ok" ? 0 : 1;
});
