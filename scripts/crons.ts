/** npm run crons: every cron of the running release, its next fire time (UTC) and its last runs. */
import { readControlInfo } from "../lib/node/control/control.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import type { CronJob, CronRun } from "../lib/node/cron/scheduler.ts";
import { UserError } from "../lib/node/common/user-error.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

cliArgs(
  { options: {} },
  "usage: npm run crons\n  Every cron of the running release (npm start), its next fire time (UTC) and its last runs.",
);

await runCommand(async () => {
  const control = await readControlInfo(projectPaths(process.env.WORKYARD_ROOT).controlInfo);
  const res = await fetch(`${control.url}/crons`, { headers: { authorization: `Bearer ${control.token}` } });
  if (!res.ok) throw new UserError(`the supervisor answered ${res.status}`);
  const listing = (await res.json()) as { job: CronJob; next: string | null; runs: CronRun[] }[];
  if (listing.length === 0) console.log("No function declares crons ([triggers] crons in its wrangler.toml).");
  for (const { job, next, runs } of listing) {
    const flags = [job.catchUp && "catch-up", job.overlap && "overlap allowed"].filter(Boolean).join(", ");
    console.log(`${job.functionName}  "${job.cron}"${flags ? `  (${flags})` : ""}`);
    console.log(`  next: ${next ?? "never"}`);
    for (const r of runs) {
      const ms = r.finishedAt ? `${new Date(r.finishedAt).getTime() - new Date(r.startedAt).getTime()} ms` : "running";
      console.log(`  ${r.scheduledAt}  ${r.trigger.padEnd(8)} ${r.status.padEnd(9)} ${ms}${r.error ? `  ${r.error}` : ""}`);
    }
    if (runs.length === 0) console.log("  no runs yet");
  }
});
