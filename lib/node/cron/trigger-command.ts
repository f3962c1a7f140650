/**
 * What `npm run trigger` does once it has reached the supervisor: picks the crons to fire (the one named, the only
 * one, or all of them with --all), fires each through POST /trigger and prints each outcome. A function with several
 * crons and no choice gets the list, as the commands to copy, and exit code 2: firing them all is never a surprise.
 */
import type { CronJob, CronRun } from "./scheduler.ts";

type Ask = <T>(method: "GET" | "POST", path: string, body?: unknown) => Promise<T>;

export interface TriggerChoice {
  fn: string;
  cron?: string;
  all: boolean;
}

/** Fires the chosen crons; answers the exit code (0 all ok, 1 a run failed, 2 the choice was missing). */
export async function triggerCrons(ask: Ask, choice: TriggerChoice, log: (line: string) => void): Promise<number> {
  let crons: (string | undefined)[] = [choice.cron];
  if (choice.cron === undefined) {
    const listing = await ask<{ job: CronJob }[]>("GET", "/crons");
    const own = listing.filter((l) => l.job.functionName === choice.fn).map((l) => l.job.cron);
    if (own.length > 1 && !choice.all) {
      log(`"${choice.fn}" has ${own.length} crons: name the one to fire, or fire them all with --all:`);
      for (const c of own) log(`  npm run trigger -- ${choice.fn} "${c}"`);
      log(`  npm run trigger -- ${choice.fn} --all`);
      return 2;
    }
    // Nothing listed: the supervisor's answer says why (no such function, or no crons).
    if (own.length > 0) crons = own;
  }
  let failed = false;
  for (const cron of crons) {
    const { run } = await ask<{ run?: CronRun }>("POST", "/trigger", { function: choice.fn, cron });
    // The supervisor answers a run for every trigger it accepted; a missing one is its bug, said as such.
    if (!run) throw new Error("the supervisor accepted the trigger but answered no run");
    const ms = run.finishedAt ? new Date(run.finishedAt).getTime() - new Date(run.startedAt).getTime() : 0;
    log(`${choice.fn} "${run.cron}": ${run.status} in ${ms} ms${run.error ? ` (${run.error})` : ""}`);
    failed ||= run.status !== "ok";
  }
  return failed ? 1 : 0;
}
