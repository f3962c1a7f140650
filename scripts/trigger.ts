/**
 * npm run trigger -- <function> [cron]: fires a function's scheduled() now, through the running
 * supervisor (so the run is recorded like any other), and prints the outcome. Exits 1 unless it was ok.
 */
import { parseArgs } from "node:util";
import { readControlInfo } from "../lib/node/control.ts";
import { projectPaths } from "../lib/node/paths.ts";
import type { CronRun } from "../lib/node/scheduler.ts";

const { positionals } = parseArgs({ allowPositionals: true });
const [fn, cron] = positionals;
if (!fn) {
  console.error('usage: npm run trigger -- <function> ["<cron>"]');
  process.exit(2);
}
try {
  const control = await readControlInfo(projectPaths(process.env.WORKYARD_ROOT).controlInfo);
  const res = await fetch(`${control.url}/trigger`, {
    method: "POST",
    headers: { authorization: `Bearer ${control.token}`, "content-type": "application/json" },
    body: JSON.stringify({ function: fn, cron }),
  });
  const body = (await res.json()) as { run?: CronRun; error?: { message: string } };
  if (!res.ok || !body.run) throw new Error(body.error?.message ?? `the supervisor answered ${res.status}`);
  const run = body.run;
  const ms = run.finishedAt ? new Date(run.finishedAt).getTime() - new Date(run.startedAt).getTime() : 0;
  console.log(`${fn} "${run.cron}": ${run.status} in ${ms} ms${run.error ? ` (${run.error})` : ""}`);
  process.exitCode = run.status === "ok" ? 0 : 1;
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
}
