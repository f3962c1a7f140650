/**
 * Scheduled triggers through real workerd: a cron fires on time and is recorded; two schedulers on one
 * database run a fire time once; catch-up, overlap, failures, the hand trigger, and the internal
 * endpoint's protection.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import postgres from "postgres";
import type { Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { checkCrons } from "../../lib/node/cron/crons.ts";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { Scheduler } from "../../lib/node/cron/scheduler.ts";
import type { CronJob } from "../../lib/node/cron/scheduler.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { runScript } from "../helpers/run-script.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";
import { listeningAddresses } from "../helpers/listening.ts";

describe("cron expressions", () => {
  it("fail the build naming the function and the expression", () => {
    expect(() => checkCrons([{ name: "ok", crons: ["*/5 * * * *", "0 0 L * *", "0 12 * * MON#2"] }])).not.toThrow();
    expect(() =>
      checkCrons([
        { name: "bad", crons: ["61 * * * *"] },
        { name: "worse", crons: ["often"] },
      ]),
    ).toThrow(/functions\/bad: "61 \* \* \* \*": Invalid value for minute[\s\S]*functions\/worse: "often"/);
  });
});

const databaseUrl = inject("databaseUrl");
let project: TestProject;
let sup: Supervisor;
let sql: Sql;
const others: Scheduler[] = [];

beforeAll(async () => {
  project = await createTestProject({ fixtures: ["ticker"] });
  if (databaseUrl) await migrateUp(databaseUrl, project.paths.migrations);
  const env = databaseUrl ? { DATABASE_URL: databaseUrl } : {};
  sup = await startSupervisor({ paths: project.paths, host: "127.0.0.1", port: 0, env, log: () => {} });
  // The platform's database directly (the embedded one when no PostgreSQL is configured).
  sql = postgres(sup.backends.database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  for (const s of others) await s.stop();
  await sql?.end();
  await sup?.stop();
  await project?.dispose();
});

const tickerJob = (cron: string, overrides: Partial<CronJob> = {}): CronJob => ({
  functionName: "ticker",
  cron,
  catchUp: false,
  overlap: false,
  timeoutMs: 10_000,
  ...overrides,
});

function scheduler(jobs: CronJob[], node: string): Scheduler {
  const s = new Scheduler({
    databaseUrl: sup.backends.database.url,
    internalUrl: sup.internalUrl,
    internalToken: sup.internalToken,
    jobs,
    node,
    log: () => {},
  });
  others.push(s);
  return s;
}

describe("scheduled triggers", () => {
  it("fire on time through real workerd and are recorded", async () => {
    const runs = await expect
      .poll(async () => sql`select * from workyard.cron_runs where function_name = 'ticker' and status = 'ok' order by scheduled_at`, {
        timeout: 15_000,
        interval: 250,
      })
      .toHaveLength(2)
      .then(() => sql`select * from workyard.cron_runs where function_name = 'ticker' and status = 'ok' order by scheduled_at`);
    for (const run of runs) {
      expect(run.cron).toBe("*/2 * * * * *");
      expect(run.trigger).toBe("schedule");
      expect((run.scheduled_at as Date).getUTCSeconds() % 2).toBe(0);
      const late = (run.started_at as Date).getTime() - (run.scheduled_at as Date).getTime();
      console.log(`[cron] started ${late} ms after its fire time`);
      expect(Math.abs(late)).toBeLessThan(1500);
      // The function's own handler ran for exactly that fire time.
      const ticks = await sql`select * from ticks where scheduled_time = ${run.scheduled_at as Date}`;
      expect(ticks).toHaveLength(1);
    }
  });

  it("run a fire time once when two schedulers share the database", async () => {
    const second = scheduler([tickerJob("*/2 * * * * *")], "second-node");
    await second.start();
    const since = new Date();
    await new Promise((r) => setTimeout(r, 6500));
    const rows = await sql<{ scheduled_at: Date; runs: string; nodes: string[] }[]>`
      select scheduled_at, count(*) as runs, array_agg(node) as nodes from workyard.cron_runs
      where function_name = 'ticker' and cron = '*/2 * * * * *' and scheduled_at > ${since} group by scheduled_at order by 1`;
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const row of rows) expect(Number(row.runs)).toBe(1);
    const ticks = await sql<
      { n: string }[]
    >`select count(*) as n from ticks where scheduled_time > ${since} group by scheduled_time having count(*) > 1`;
    expect(ticks).toEqual([]);
    await second.stop();
  });

  it("catch up a missed fire time once, only for a cron that ran before", async () => {
    const cron = "0 0 1 1 *";
    const s = scheduler([tickerJob(cron, { catchUp: true })], "catch-up-node");
    expect(await s.catchUp()).toEqual([]); // never ran: nothing was missed
    await sql`insert into workyard.cron_runs (function_name, cron, scheduled_at, trigger, node, status, finished_at)
              values ('ticker', ${cron}, now() - interval '2 years', 'schedule', 'old-node', 'ok', now() - interval '2 years')`;
    const [run] = await s.catchUp();
    expect(run).toMatchObject({ trigger: "catch-up", status: "ok" });
    expect(run?.scheduledAt.getUTCMonth()).toBe(0);
    expect(await s.catchUp()).toEqual([]); // once
  });

  it("skip a run while the previous run of the same cron is still going, unless overlap is allowed", async () => {
    const slow = tickerJob("0 0 29 2 *");
    const s = scheduler([slow], "overlap-node");
    const t = Date.now();
    const [first, second] = await Promise.all([
      s.fire(slow, new Date(t - 60_000), "schedule"),
      new Promise((r) => setTimeout(r, 200)).then(() => s.fire(slow, new Date(t - 30_000), "schedule")),
    ]);
    expect(first?.status).toBe("ok");
    expect(second?.status).toBe("skipped");
    const allowed = { ...slow, overlap: true };
    const both = await Promise.all([s.fire(allowed, new Date(t - 20_000), "schedule"), s.fire(allowed, new Date(t - 10_000), "schedule")]);
    expect(both.map((r) => r?.status)).toEqual(["ok", "ok"]);
  });

  it("record a failing task as an exception", async () => {
    const run = await scheduler([], "fail-node").fire(tickerJob("0 0 30 2 *"), new Date(), "schedule");
    expect(run).toMatchObject({ status: "exception", error: expect.stringMatching(/outcome "exception"/) });
  });

  it("fire by hand with npm run trigger", async () => {
    // ticker's own schedule fires every 2 s: a manual run that meets a scheduled one still going is skipped (no
    // overlap), as it should be; try again then.
    let stdout = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const outcome = (await runScript("trigger.ts", ["ticker"], { WORKYARD_ROOT: project.paths.root })).stdout;
      stdout = outcome;
      if (!/: skipped in/.test(outcome)) break;
    }
    expect(stdout).toMatch(/^ticker "\*\/2 \* \* \* \* \*": ok in \d+ ms/);
    const run = promisify(execFile);
    const listing = await run(process.execPath, ["scripts/crons.ts"], { env: { ...process.env, WORKYARD_ROOT: project.paths.root } });
    expect(listing.stdout).toMatch(/ticker {2}"\*\/2 \* \* \* \* \*"\n {2}next: \d{4}-/);
    expect(listing.stdout).toMatch(/manual\s+ok/);
  });
});

describe("the internal endpoint", () => {
  it("is not reachable through the public socket", async () => {
    for (const path of ["/scheduled/ticker", "/internal/scheduled/ticker", "/healthz"]) {
      const res = await fetch(`${sup.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${sup.internalToken}` } });
      expect(res.status).toBe(404);
    }
  });

  it("needs the token", async () => {
    expect((await fetch(`${sup.internalUrl}/healthz`)).status).toBe(401);
    expect((await fetch(`${sup.internalUrl}/healthz`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await fetch(`${sup.internalUrl}/scheduled/ticker`, { method: "POST" })).status).toBe(401);
    const ok = await fetch(`${sup.internalUrl}/healthz`, { headers: { authorization: `Bearer ${sup.internalToken}` } });
    expect(await ok.json()).toEqual({ ok: true });
  });

  it("answers readiness with each dependency, reached from inside workerd", async () => {
    expect((await fetch(`${sup.internalUrl}/readyz`)).status).toBe(401);
    const res = await fetch(`${sup.internalUrl}/readyz`, { headers: { authorization: `Bearer ${sup.internalToken}` } });
    const body = (await res.json()) as { ok: boolean; checks: Record<string, { ok: boolean; ms: number }> };
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ ok: true, checks: { workerd: { ok: true }, database: { ok: true }, redis: { ok: true } } });
    expect(body.checks.database?.ms).toBeGreaterThanOrEqual(0);
  });

  it("listens on loopback only", async () => {
    // What the socket is bound to, from the kernel: not the URL the supervisor prints.
    expect(await listeningAddresses(Number(new URL(sup.internalUrl).port))).toEqual(["127.0.0.1"]);
  });
});
