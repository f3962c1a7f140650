/**
 * The cron scheduler: fires each function's crons at their time (croner, UTC) by calling the function's
 * real scheduled() handler in workerd through the internal socket. Every run is recorded in
 * workyard.cron_runs; a fire time is claimed with an insert that only one scheduler can win, so it runs
 * once even when several supervisors (nodes) share the database. A missed fire time runs once at start
 * when the function asks for catch-up; overlapping runs of one cron are skipped unless allowed.
 */
import { hostname } from "node:os";
import { Cron } from "croner";
import postgres from "postgres";
import type { Sql } from "postgres";
import { nextFire, previousFire } from "./crons.ts";
import type { FunctionEntry } from "../releases/manifest.ts";
import { UserError } from "../common/user-error.ts";
import { INTERNAL_PATHS } from "../../shared/names.ts";

export interface CronJob {
  functionName: string;
  cron: string;
  catchUp: boolean;
  overlap: boolean;
  timeoutMs: number;
}

export type Trigger = "schedule" | "catch-up" | "manual";
export type RunStatus = "running" | "ok" | "exception" | "skipped" | "error";

export interface CronRun {
  id: number;
  functionName: string;
  cron: string;
  scheduledAt: Date;
  trigger: Trigger;
  node: string;
  status: RunStatus;
  startedAt: Date;
  finishedAt: Date | null;
  error: string | null;
}

export interface SchedulerOptions {
  /** Where runs are recorded (direct to PostgreSQL, or the embedded one). */
  databaseUrl: string;
  /** The internal socket's base URL, and its token. */
  internalUrl: string;
  internalToken: string;
  jobs: CronJob[];
  /** Every function of the release, crons or not (to tell an unknown name from one without crons). */
  functions?: string[];
  /** This scheduler's name in the run records. */
  node?: string;
  log: (line: string) => void;
}

/** The cron jobs a release declares. */
export function jobsOf(functions: FunctionEntry[]): CronJob[] {
  return functions.flatMap((fn) =>
    fn.crons.map((cron) => ({
      functionName: fn.name,
      cron,
      catchUp: fn.cron.catchUp,
      overlap: fn.cron.overlap,
      timeoutMs: fn.cron.timeoutMs,
    })),
  );
}

interface RunRow {
  id: string;
  function_name: string;
  cron: string;
  scheduled_at: Date;
  trigger: Trigger;
  node: string;
  status: RunStatus;
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
}

const toRun = (r: RunRow): CronRun => ({
  id: Number(r.id),
  functionName: r.function_name,
  cron: r.cron,
  scheduledAt: r.scheduled_at,
  trigger: r.trigger,
  node: r.node,
  status: r.status,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  error: r.error,
});

export class Scheduler {
  readonly node: string;
  private readonly sql: Sql;
  private readonly timers: Cron[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;

  private readonly opts: SchedulerOptions;

  constructor(opts: SchedulerOptions) {
    this.opts = opts;
    this.node = opts.node ?? `${hostname()}:${process.pid}`;
    this.sql = postgres(opts.databaseUrl, { max: 2, onnotice: () => {}, idle_timeout: 30 });
  }

  /** Starts the timers, after running missed fire times of the jobs that ask for catch-up. */
  async start(): Promise<void> {
    await this.catchUp();
    for (const job of this.opts.jobs) {
      const timer = new Cron(job.cron, { timezone: "UTC", catch: true }, (self: Cron) => {
        const at = self.currentRun() ?? new Date();
        // croner hands the time it fired at; a fire time is a whole second (or minute) in the pattern.
        const scheduledAt = new Date(Math.round(at.getTime() / 1000) * 1000);
        this.track(this.fire(job, scheduledAt, "schedule"));
      });
      this.timers.push(timer);
    }
  }

  private track(p: Promise<unknown>): void {
    const tracked = p
      .catch((err: unknown) => this.opts.log(`cron: ${(err as Error).message}`))
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /** For each catch-up job: when its latest fire time has no run but an earlier one had, run it once now. */
  async catchUp(now = new Date()): Promise<CronRun[]> {
    const runs: CronRun[] = [];
    for (const job of this.opts.jobs.filter((j) => j.catchUp)) {
      const missed = previousFire(job.cron, now);
      if (!missed) continue;
      const [seen] = await this.sql<{ last: Date | null; has_missed: boolean }[]>`
        select max(scheduled_at) filter (where trigger <> 'manual') as last,
               bool_or(scheduled_at = ${missed} and trigger <> 'manual') as has_missed
        from workyard.cron_runs where function_name = ${job.functionName} and cron = ${job.cron}`;
      // Never ran before: nothing was missed (a new cron starts from now).
      if (!seen?.last || seen.has_missed) continue;
      this.opts.log(`cron: catching up ${job.functionName} "${job.cron}" missed at ${missed.toISOString()}`);
      const run = await this.fire(job, missed, "catch-up");
      if (run) runs.push(run);
    }
    return runs;
  }

  /**
   * Claims the fire time and runs it. Returns the run, or undefined when another scheduler claimed it.
   * A manual run is never deduplicated.
   */
  async fire(job: CronJob, scheduledAt: Date, trigger: Trigger): Promise<CronRun | undefined> {
    if (this.stopped) return undefined;
    const timeoutSeconds = job.timeoutMs / 1000;
    const [claim] = await this.sql<RunRow[]>`
      insert into workyard.cron_runs (function_name, cron, scheduled_at, trigger, node, status, finished_at)
      select ${job.functionName}, ${job.cron}, ${scheduledAt}, ${trigger}, ${this.node}, s.status,
             case when s.status = 'skipped' then now() end
      from (select case
              when ${job.overlap} then 'running'
              when exists (select 1 from workyard.cron_runs
                           where function_name = ${job.functionName} and cron = ${job.cron} and status = 'running'
                             and started_at > now() - make_interval(secs => ${timeoutSeconds}))
                then 'skipped'
              else 'running' end as status) s
      on conflict (function_name, cron, scheduled_at) where trigger <> 'manual' do nothing
      returning *`;
    if (!claim) return undefined;
    if (claim.status === "skipped") {
      this.opts.log(`cron: skipped ${job.functionName} "${job.cron}" at ${scheduledAt.toISOString()}: the previous run is still going`);
      return toRun(claim);
    }

    let status: RunStatus;
    let error: string | null = null;
    try {
      const url = new URL(`${INTERNAL_PATHS.scheduled}${job.functionName}`, this.opts.internalUrl);
      url.searchParams.set("cron", job.cron);
      url.searchParams.set("scheduledTime", String(scheduledAt.getTime()));
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${this.opts.internalToken}` },
        signal: AbortSignal.timeout(job.timeoutMs),
      });
      const body = (await res.json()) as { outcome?: string; error?: { message: string } };
      if (!res.ok) {
        status = "error";
        error = body.error?.message ?? `internal endpoint answered ${res.status}`;
      } else {
        status = body.outcome === "ok" ? "ok" : "exception";
        if (status === "exception") error = `scheduled() ended with outcome "${body.outcome}"; see the function's log`;
      }
    } catch (err) {
      status = "error";
      error = (err as Error).name === "TimeoutError" ? `did not finish within ${job.timeoutMs} ms` : (err as Error).message;
    }
    const [done] = await this.sql<RunRow[]>`
      update workyard.cron_runs set status = ${status}, finished_at = now(), error = ${error}
      where id = ${claim.id} returning *`;
    if (status !== "ok") this.opts.log(`cron: ${job.functionName} "${job.cron}" ${status}: ${error}`);
    return done ? toRun(done) : undefined;
  }

  /** Fires a function's cron now, by hand (the only cron when `cron` is not given). */
  async trigger(functionName: string, cron?: string): Promise<CronRun | undefined> {
    const jobs = this.opts.jobs.filter((j) => j.functionName === functionName);
    if (jobs.length === 0) {
      const known = this.opts.functions;
      if (known && !known.includes(functionName)) {
        throw new UserError(`No function named "${functionName}" in the live release; its functions: ${known.join(", ") || "none"}`);
      }
      throw new UserError(`"${functionName}" declares no crons ([triggers] crons in its wrangler.toml)`);
    }
    const job = cron === undefined ? (jobs.length === 1 ? jobs[0] : undefined) : jobs.find((j) => j.cron === cron);
    if (!job) {
      const which = cron === undefined ? "Say which cron" : `"${functionName}" has no cron "${cron}": say which one`;
      throw new UserError(`${which} of "${functionName}" to fire: ${jobs.map((j) => `"${j.cron}"`).join(", ")}`);
    }
    return this.fire(job, new Date(), "manual");
  }

  /** Each job with its next fire time and its latest runs. */
  async listing(lastRuns = 5): Promise<{ job: CronJob; next: Date | null; runs: CronRun[] }[]> {
    return Promise.all(
      this.opts.jobs.map(async (job) => {
        const rows = await this.sql<RunRow[]>`
          select * from workyard.cron_runs where function_name = ${job.functionName} and cron = ${job.cron}
          order by started_at desc limit ${lastRuns}`;
        return { job, next: nextFire(job.cron), runs: rows.map(toRun) };
      }),
    );
  }

  /** Stops the timers and waits (bounded) for runs in flight. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) t.stop();
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, graceMs))]);
    await this.sql.end({ timeout: 5 });
  }
}
