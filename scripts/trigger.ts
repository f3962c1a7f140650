/**
 * npm run trigger -- <function> ["<cron>" | --all]: fires a function's scheduled() now, through the running
 * supervisor (so the run is recorded like any other), and prints the outcome. Exits 1 unless every run was ok.
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { controlRequest, readControlInfo } from "../lib/node/control/control.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import { triggerCrons } from "../lib/node/cron/trigger-command.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const usage = `usage: npm run trigger -- <function> ["<cron>" | --all]
  Fires a function's cron now, through the running npm start, and records the run like a scheduled one.
  A function with several crons: name one ("*/5 * * * *") or fire them all, one after the other, with --all.
  Exits 1 unless every run was ok.`;
const { positionals, values } = cliArgs({ allowPositionals: true, options: { all: { type: "boolean" } } }, usage);
const [fn, cron, ...extra] = positionals;
if (!fn || extra.length > 0 || (cron !== undefined && values.all)) {
  console.error(usage);
  process.exit(2);
}
await runCommand(async () => {
  const control = await readControlInfo(projectPaths(process.env.WORKYARD_ROOT).controlInfo);
  return triggerCrons(
    (method, path, body) => controlRequest(control, method, path, body),
    { fn, cron, all: values.all ?? false },
    console.log,
  );
});
