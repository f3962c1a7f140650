/**
 * Two nodes on one machine, against one PostgreSQL database and one Redis, as several servers behind a load
 * balancer would be. Node A runs everything itself (`npm start`); node B is laid out like the production units:
 * PgBouncer and the Redis proxy (`npm run redis-proxy`) run on their own and its supervisor uses them
 * (PGBOUNCER_URL, REDIS_PROXY_URL). Both serve traffic and see each other's writes, and every cron fire time
 * runs exactly once across the two schedulers.
 */
import { execa } from "execa";
import type { ResultPromise } from "execa";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import postgres from "postgres";
import type { Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort } from "../../lib/node/runtime/listen-socket.ts";
import { bearer, mintToken, testJwtSecret } from "../helpers/auth.ts";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { findPgbouncer, startPgbouncer } from "../../lib/node/data/pgbouncer.ts";
import type { Pgbouncer } from "../../lib/node/data/pgbouncer.ts";
import type { CronJob } from "../../lib/node/cron/scheduler.ts";
import { pgbouncerSettingsFromEnv } from "../../lib/node/runtime/standalone-services.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";
import { needs } from "../helpers/needs.ts";

const realDatabase = needs({
  suite: "two nodes, one database",
  service: "a real PostgreSQL and pgbouncer",
  available: inject("databaseUrl") !== null && findPgbouncer() !== undefined,
  fix: "PostgreSQL on 127.0.0.1:5432 and apt-get install -y pgbouncer; .ci/run provides both",
});

describe.runIf(realDatabase)("two nodes, one database", () => {
  let db: FreshDatabase;
  let sql: Sql;
  const projects: TestProject[] = [];
  let a: Supervisor;
  let b: Supervisor;
  let pgbouncerB: Pgbouncer | undefined;
  let proxyB: ResultPromise | undefined;
  let bothUpAt: Date;
  let pgbouncerUrlB: string;
  const jwtSecret = testJwtSecret();

  beforeAll(async () => {
    db = await freshDatabase();
    await migrateUp(db.url, "migrations");
    sql = postgres(db.url, { max: 2, onnotice: () => {} });
    const redisUrl = inject("redisUrl") ?? undefined;
    // Every node shares the token signing key: a user signed in through one is signed in on all.
    const common = { DATABASE_URL: db.url, AUTH_JWT_SECRET: jwtSecret, ...(redisUrl ? { REDIS_URL: redisUrl } : {}) };
    for (let i = 0; i < 2; i++) projects.push(await createTestProject({ fixtures: ["ticker"] }));
    const [projectA, projectB] = projects as [TestProject, TestProject];

    a = await startSupervisor({
      paths: projectA.paths,
      host: "127.0.0.1",
      port: 0,
      env: { ...common, WORKYARD_NODE: "node-a" },
      log: () => {},
    });

    // Node B, as the units run it: PgBouncer from DATABASE_URL + PGBOUNCER_URL, the proxy as its own process.
    const pgbouncerUrl = new URL(db.url);
    pgbouncerUrl.password = randomBytes(12).toString("hex");
    pgbouncerUrl.port = String(await freePort());
    const proxyEnv = { REDIS_PROXY_URL: `http://127.0.0.1:${await freePort()}`, REDIS_PROXY_TOKEN: randomBytes(24).toString("base64url") };
    pgbouncerUrlB = pgbouncerUrl.toString();
    const envB = { ...common, ...proxyEnv, PGBOUNCER_URL: pgbouncerUrlB, WORKYARD_NODE: "node-b" };
    pgbouncerB = await startPgbouncer(pgbouncerSettingsFromEnv(envB, join(projectB.paths.work, "pgbouncer-unit")), () => {});
    proxyB = execa(process.execPath, ["scripts/redis-proxy.ts"], { env: { ...common, ...proxyEnv }, reject: false });
    b = await startSupervisor({ paths: projectB.paths, host: "127.0.0.1", port: 0, env: envB, log: () => {} });
    bothUpAt = new Date();
  });

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    proxyB?.kill("SIGTERM");
    await proxyB;
    await pgbouncerB?.stop();
    await sql?.end();
    await db?.dispose();
    for (const p of projects) await p.dispose();
  });

  it("node B uses the PgBouncer and Redis proxy already running, node A its own", () => {
    expect(a.backends.database).toMatchObject({ kind: "postgres", pooler: { kind: "pgbouncer" } });
    expect(a.backends.database.kind === "postgres" && a.backends.database.pooler.external).toBeFalsy();
    expect(b.backends.database).toMatchObject({ kind: "postgres", pooler: { kind: "pgbouncer", external: true, url: pgbouncerUrlB } });
    expect(b.backends.redis.label).toBe("the already-running proxy at REDIS_PROXY_URL");
  });

  it("both serve traffic, and a write through one is read through the other", async () => {
    for (const node of [a, b]) expect((await fetch(`${node.url}/hello`)).status).toBe(200);
    const user = bearer(await mintToken(jwtSecret));
    const created = await fetch(`${a.url}/links`, {
      method: "POST",
      headers: { "content-type": "application/json", ...user },
      body: JSON.stringify({ url: "https://example.com/shared" }),
    });
    expect(created.status).toBe(201);
    const { code } = (await created.json()) as { code: string };
    const viaB = await fetch(`${b.url}/links/${code}`, { redirect: "manual" });
    expect(viaB.status).toBe(302);
    expect(viaB.headers.get("location")).toBe("https://example.com/shared");
    const viaA = await fetch(`${a.url}/links/${code}`, { redirect: "manual" });
    expect(viaA.status).toBe(302);
    // The same token is good on the other node: its owner deletes the link there.
    expect((await fetch(`${b.url}/links/${code}`, { method: "DELETE", headers: user })).status).toBe(204);
    expect((await fetch(`${a.url}/links/${code}`, { redirect: "manual" })).status).toBe(404);
  });

  it("every cron fire time runs exactly once across both schedulers, with none missed", async () => {
    // The ticker fixture's cron fires every 2 seconds on both nodes; wait for five fire times after both were up.
    const since = new Date(bothUpAt.getTime() + 2000);
    const query = () => sql<{ scheduled_at: Date; runs: string; nodes: string[]; statuses: string[] }[]>`
      select scheduled_at, count(*) as runs, array_agg(node) as nodes, array_agg(status) as statuses from workyard.cron_runs
      where function_name = 'ticker' and cron = '*/2 * * * * *' and trigger = 'schedule' and scheduled_at > ${since}
      group by scheduled_at order by scheduled_at`;
    await expect
      .poll(async () => (await query()).filter((r) => r.statuses.every((s) => s === "ok")).length, { timeout: 30_000, interval: 500 })
      .toBeGreaterThanOrEqual(5);
    const rows = (await query()).slice(0, 5);
    for (const row of rows) {
      expect(Number(row.runs)).toBe(1);
      expect(["node-a", "node-b"]).toContain(row.nodes[0]);
    }
    // No fire time missed: consecutive ones, two seconds apart.
    for (let i = 1; i < rows.length; i++)
      expect((rows[i]?.scheduled_at.getTime() ?? 0) - (rows[i - 1]?.scheduled_at.getTime() ?? 0)).toBe(2000);
    // The function's own handler ran once per fire time too.
    const ticks = await sql<{ scheduled_time: Date; n: string }[]>`
      select scheduled_time, count(*) as n from ticks where cron = '*/2 * * * * *' and scheduled_time > ${since}
        and scheduled_time <= ${rows.at(-1)?.scheduled_at ?? since} group by scheduled_time order by 1`;
    expect(ticks.map((t) => [t.scheduled_time.getTime(), Number(t.n)])).toEqual(rows.map((r) => [r.scheduled_at.getTime(), 1]));
    console.log(`[several nodes] fire times won by: ${rows.map((r) => r.nodes[0]).join(", ")}`);
  });

  it("when both schedulers fire the same time at the same moment, one runs it and the other stands down", async () => {
    const job: CronJob = { functionName: "ticker", cron: "*/2 * * * * *", catchUp: false, overlap: false, timeoutMs: 10_000 };
    const won = { a: 0, b: 0 };
    for (let i = 0; i < 10; i++) {
      const at = new Date(Date.UTC(2001, 0, 1, 0, 0, 2 * i));
      const [runA, runB] = await Promise.all([a.scheduler?.fire(job, at, "schedule"), b.scheduler?.fire(job, at, "schedule")]);
      expect([runA, runB].filter((r) => r !== undefined)).toHaveLength(1);
      expect((runA ?? runB)?.status).toBe("ok");
      if (runA) won.a++;
      else won.b++;
    }
    const [{ n } = { n: "0" }] = await sql<
      { n: string }[]
    >`select count(*) as n from ticks where scheduled_time >= '2001-01-01' and scheduled_time < '2001-01-02'`;
    expect(Number(n)).toBe(10);
    console.log(`[several nodes] races won: node-a ${won.a}, node-b ${won.b}`);
  });
});
