/**
 * Queues under real faults, end to end (a function's send → the queue service → PostgreSQL → the dispatcher → the
 * consumer's queue() in workerd): a workerd process killed with SIGKILL while batches are out, the supervisor itself
 * killed with SIGKILL (`npm start` as a child process; its workerd and PgBouncer die with it) and started again on the
 * same database, and PostgreSQL stopped under a send. The consumer (tests/fixtures/functions/queue-ledger) records each
 * delivery as a row of its own table, so each test counts in SQL what it was promised (the sends answered 200), what
 * was processed and how often, and what is left in the queue: at least once means every acknowledged message was
 * processed, and none is left behind.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import type { Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { findPgbouncer } from "../../lib/node/data/pgbouncer.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { testJwtSecret } from "../helpers/auth.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import { needs } from "../helpers/needs.ts";
import { createPrivatePostgres, postgresBinDir } from "../helpers/private-postgres.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

/** Messages each kill test sends. */
const N = 300;
const repo = projectPaths();
const jwtSecret = testJwtSecret();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

/** The environment every supervisor here gets: quick polls, no cron, the run's Redis when it has one. */
function serveEnv(databaseUrl: string): Record<string, string> {
  const redisUrl = inject("redisUrl");
  return {
    DATABASE_URL: databaseUrl,
    AUTH_JWT_SECRET: jwtSecret,
    WORKERD_PROCESSES: "2",
    WORKYARD_QUEUE_POLL_MS: "200",
    WORKYARD_SCHEDULER: "off",
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  };
}

/** The app's migrations and the consumer's ledger table (the platform's own tables come with the supervisor). */
async function prepareDatabase(url: string, project: TestProject): Promise<Sql> {
  await migrateUp(url, project.paths.migrations);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql`create table queue_ledger (seq int not null, message_id uuid not null, attempts int not null, at timestamptz not null default now())`;
  return sql;
}

interface Sent {
  /** The sequence numbers whose send was answered 200: the messages the platform promised to deliver. */
  acknowledged: Set<number>;
  /** Every other answer (a status, or the fetch's error), with how many sends got it. */
  refused: Map<string, number>;
}

/** Sends {seq} for each of `seqs` through the function over HTTP, `concurrency` at a time. */
async function sendAll(base: string, seqs: number[], { concurrency = 16, query = "" } = {}): Promise<Sent> {
  const sent: Sent = { acknowledged: new Set(), refused: new Map() };
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < seqs.length; i = next++) {
      const seq = seqs[i] as number;
      const outcome = await fetch(`${base}/queue-ledger/send/${seq}${query}`, { method: "POST", signal: AbortSignal.timeout(15_000) }).then(
        async (res) => (await res.text(), res.status === 200 ? "ok" : String(res.status)),
        (err: Error) => `${err.name}: ${err.message}`,
      );
      if (outcome === "ok") sent.acknowledged.add(seq);
      else sent.refused.set(outcome, (sent.refused.get(outcome) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return sent;
}

interface Tally {
  acknowledged: number;
  /** Distinct messages the consumer processed (recorded). */
  processed: number;
  /** Deliveries recorded: processed plus duplicates. */
  deliveries: number;
  duplicates: number;
  /** Acknowledged messages never processed. */
  missing: number[];
  /** Messages still in the queue (ready, delayed or in flight). */
  left: number;
  deadLettered: number;
  /** Deliveries recorded at attempts > 1: the lease or a failed delivery brought the message back. */
  redelivered: number;
}

async function tally(sql: Sql, sent: Sent): Promise<Tally> {
  const seen = await sql<{ seq: number; n: number; max_attempts: number }[]>`
    select seq, count(*)::int as n, max(attempts)::int as max_attempts from queue_ledger group by seq`;
  const processed = new Set(seen.map((r) => r.seq));
  const [queue] = await sql<{ left: number; dead: number }[]>`
    select count(*) filter (where queue = 'ledger')::int as left, count(*) filter (where queue = 'ledger-dead')::int as dead
    from workyard.queue_messages`;
  const deliveries = seen.reduce((a, r) => a + r.n, 0);
  return {
    acknowledged: sent.acknowledged.size,
    processed: processed.size,
    deliveries,
    duplicates: deliveries - processed.size,
    missing: [...sent.acknowledged].filter((s) => !processed.has(s)),
    left: queue?.left ?? -1,
    deadLettered: queue?.dead ?? -1,
    redelivered: seen.filter((r) => r.max_attempts > 1).length,
  };
}

/** Waits until every acknowledged message was processed and the queue is empty; answers the final tally. */
async function settled(sql: Sql, sent: Sent, timeoutMs: number): Promise<Tally> {
  await expect
    .poll(
      async () => {
        const t = await tally(sql, sent);
        return t.missing.length === 0 && t.left === 0;
      },
      { timeout: timeoutMs, interval: 200 },
    )
    .toBe(true);
  await sleep(500); // a late second delivery would be recorded by now
  return tally(sql, sent);
}

const ledgerRows = async (sql: Sql) => (await sql<{ n: number }[]>`select count(*)::int as n from queue_ledger`)[0]?.n ?? 0;
const leased = async (sql: Sql) =>
  (await sql<{ n: number }[]>`select count(*)::int as n from workyard.queue_messages where lease is not null and visible_at > now()`)[0]
    ?.n ?? 0;

function report(what: string, t: Tally, extra: Record<string, unknown>): void {
  console.log(`[queue-faults] ${what}: ${JSON.stringify({ ...t, missing: t.missing.length, ...extra })}`);
}

/** The pids whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/** True while `pid` runs (a zombie waiting for its reaper counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** A process's command line and the folder it runs in (PgBouncer names its files relative to that folder). */
const commandLine = (pid: number): string => {
  try {
    return `${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim()} (in ${readlinkSync(`/proc/${pid}/cwd`)})`;
  } catch {
    return "";
  }
};

/** `npm start` as a child process, on a project copy. */
interface Served {
  child: ChildProcess;
  pid: number;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

async function npmStart(project: TestProject, env: Record<string, string>): Promise<Served> {
  const child = spawn(process.execPath, [join(repo.root, "scripts/start.ts")], {
    cwd: repo.root,
    env: { ...process.env, ...env, WORKYARD_ROOT: project.paths.root, HOST: "127.0.0.1", PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const url = /workyard is serving (http:\/\/\S+)/.exec(output)?.[1];
    if (url && child.pid !== undefined) return { child, pid: child.pid, url, output: () => output, exited };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`npm start did not start (exit ${child.exitCode}):\n${output}`);
    }
    await sleep(100);
  }
}

/** Stops a served child with SIGTERM as a user would, SIGKILL if it does not stop in time. */
async function stopServed(served: Served | undefined): Promise<void> {
  if (!served || served.child.exitCode !== null || served.child.signalCode !== null) return;
  served.child.kill("SIGTERM");
  const stopped = await Promise.race([served.exited.then(() => true), sleep(20_000).then(() => false)]);
  if (!stopped) served.child.kill("SIGKILL");
}

let project: TestProject;

beforeAll(async () => {
  project = await createTestProject({ realFunctions: false, fixtures: ["queue-ledger"] });
  // A project in a folder only its owner may enter, as in a clone into mktemp -d: as root, PgBouncer runs as nobody,
  // who cannot pass through it, and must still die with a supervisor killed outright.
  await chmod(project.paths.root, 0o700);
  // Each message takes a few ms after it is recorded, so that batches are out when the fault comes.
  const toml = join(project.paths.functions, "queue-ledger", "wrangler.toml");
  await writeFile(toml, (await readFile(toml, "utf8")).replace(/^CONSUME_MS = .*$/m, 'CONSUME_MS = "5"'));
});

afterAll(async () => {
  await project?.dispose();
});

const bin = postgresBinDir();
const pgbouncer = findPgbouncer();
const canKill = needs({
  suite: "queue faults: workerd and the supervisor killed",
  service: [inject("databaseUrl") === null && "a real PostgreSQL", !pgbouncer && "pgbouncer"].filter(Boolean).join(" and "),
  available: inject("databaseUrl") !== null && Boolean(pgbouncer),
  fix: "PostgreSQL on 127.0.0.1:5432 and apt-get install -y pgbouncer; .ci/run provides both",
});
const canStopPostgres = needs({
  suite: "queue faults: PostgreSQL down",
  service: [!bin && "PostgreSQL's server binaries", !pgbouncer && "pgbouncer"].filter(Boolean).join(" and "),
  available: Boolean(bin && pgbouncer),
  fix: "apt-get install -y postgresql pgbouncer; .ci/run installs them",
});

describe.runIf(canKill)("queue faults: processes killed", () => {
  it("kill -9 of a workerd process while batches are out: every acknowledged message processed, none left", async () => {
    const db = await freshDatabase();
    let sup: Supervisor | undefined;
    let sql: Sql | undefined;
    try {
      sql = await prepareDatabase(db.url, project);
      const logs: string[] = [];
      sup = await startSupervisor({ paths: project.paths, host: "127.0.0.1", port: 0, env: serveEnv(db.url), log: (l) => logs.push(l) });
      const started = Date.now();
      const sending = sendAll(sup.url, range(0, N));
      // Processing under way (some recorded, most not): kill one workerd process outright.
      await expect.poll(() => ledgerRows(sql as Sql), { timeout: 15_000, interval: 10 }).toBeGreaterThanOrEqual(30);
      const before = sup.pids();
      const victim = before[0] as number;
      process.kill(victim, "SIGKILL");
      const atKill = { recorded: await ledgerRows(sql), leased: await leased(sql), msAfterFirstSend: Date.now() - started };
      expect(atKill.recorded).toBeLessThan(N);
      const sent = await sending;
      const t = await settled(sql, sent, 30_000);
      // The supervisor replaced the killed process.
      await expect.poll(() => sup?.pids().length, { timeout: 10_000 }).toBe(before.length);
      expect(sup.pids()).not.toContain(victim);
      report("workerd killed", t, {
        ms: Date.now() - started,
        atKill,
        refused: Object.fromEntries(sent.refused),
        failedDeliveries: logs.filter((l) => /"ledger" → functions\/queue-ledger: the delivery failed/.test(l)).length,
      });
      expect(t.acknowledged).toBeGreaterThan(0);
      expect(t.missing).toEqual([]);
      expect(t.processed).toBeGreaterThanOrEqual(t.acknowledged);
      expect(t.left).toBe(0);
    } finally {
      await sql?.end();
      await sup?.stop();
      await db.dispose();
    }
  }, 60_000);

  it("kill -9 of the supervisor (npm start) mid-processing, started again on the same database: every acknowledged message processed once the leases ran out", async () => {
    const db = await freshDatabase();
    let first: Served | undefined;
    let second: Served | undefined;
    let sql: Sql | undefined;
    let orphans: number[] = [];
    try {
      sql = await prepareDatabase(db.url, project);
      first = await npmStart(project, serveEnv(db.url));
      const children = childrenOf(first.pid); // workerd processes and PgBouncer, each under setpriv --pdeathsig
      expect(children.length).toBeGreaterThanOrEqual(3);
      orphans = children;
      const started = Date.now();
      const sent = await sendAll(first.url, range(0, N));
      expect(sent.acknowledged.size).toBe(N); // nothing is wrong yet
      await expect.poll(() => ledgerRows(sql as Sql), { timeout: 15_000, interval: 10 }).toBeGreaterThanOrEqual(60);
      first.child.kill("SIGKILL");
      const killedAt = Date.now();
      await first.exited;
      const atKill = { recorded: await ledgerRows(sql), leased: await leased(sql) };
      expect(atKill.recorded).toBeLessThan(N);
      expect(atKill.leased).toBeGreaterThan(0); // batches were out
      // Its workerd processes and PgBouncer died with it (the kernel's parent-death signal).
      // (Named by command line, so that a survivor says what it is.)
      await expect.poll(() => children.filter(alive).map((pid) => `${pid} ${commandLine(pid)}`), { timeout: 5000 }).toEqual([]);
      // Nothing delivers now: the batches that were out keep their lease, the rest wait.
      second = await npmStart(project, serveEnv(db.url));
      const restartedAfterMs = Date.now() - killedAt;
      const t = await settled(sql, sent, 30_000);
      report("supervisor killed", t, { ms: Date.now() - started, atKill, restartedAfterMs, settledAfterKillMs: Date.now() - killedAt });
      expect(t.missing).toEqual([]);
      expect(t.processed).toBeGreaterThanOrEqual(t.acknowledged);
      expect(t.left).toBe(0);
      // The batches that were out at the kill were delivered again (once their lease, queue_timeout_ms + 5 s, ran out).
      expect(t.redelivered).toBeGreaterThanOrEqual(1);
    } finally {
      if (first && first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
      // Whatever outlived it (only ours: a pid still running this project's files, not one reused since).
      for (const pid of orphans.filter((p) => alive(p) && commandLine(p).includes(project.paths.root))) process.kill(pid, "SIGKILL");
      await stopServed(second);
      await sql?.end();
      await db.dispose();
    }
  }, 90_000);
});

describe.runIf(canStopPostgres)("queue faults: PostgreSQL down", () => {
  it("answers a send 503 queue_unavailable with Retry-After storing nothing, and delivers what was sent before once PostgreSQL is back", async () => {
    const pg = await createPrivatePostgres();
    let sup: Supervisor | undefined;
    let sql: Sql | undefined;
    try {
      sql = await prepareDatabase(pg.url, project);
      const logs: string[] = [];
      sup = await startSupervisor({ paths: project.paths, host: "127.0.0.1", port: 0, env: serveEnv(pg.url), log: (l) => logs.push(l) });
      // Sent before the outage, due two seconds later: still in the queue when PostgreSQL stops.
      const before = await sendAll(sup.url, range(0, 20), { query: "?delay=2" });
      expect(before.acknowledged.size).toBe(20);
      await sql.end();
      sql = undefined;
      await pg.stop();
      const down = await fetch(`${sup.url}/queue-ledger/send/1000`, { method: "POST" });
      expect(down.status).toBe(503);
      expect(down.headers.get("retry-after")).toBe("5");
      expect(await down.json()).toMatchObject({ error: { code: "queue_unavailable", requestId: expect.any(String) } });
      const during = await sendAll(sup.url, range(1001, 10), { concurrency: 5 });
      expect(during).toEqual({ acknowledged: new Set(), refused: new Map([["503", 10]]) });
      // The dispatcher meets the outage once the messages are due, and keeps trying on its own.
      await expect.poll(() => logs.some((l) => /^queues: "ledger": the database did not answer/.test(l)), { timeout: 10_000 }).toBe(true);
      await pg.start();
      const back = Date.now();
      sql = postgres(pg.url, { max: 1, onnotice: () => {} });
      const t = await settled(sql, before, 20_000);
      const resumedMs = Date.now() - back;
      report("PostgreSQL down", t, { resumedAfterMs: resumedMs });
      expect(t.missing).toEqual([]);
      expect(t.left).toBe(0);
      expect(t.deadLettered).toBe(0);
      // Nothing of the refused sends was stored: neither delivered nor waiting.
      expect(await sql`select seq from queue_ledger where seq >= 1000`).toEqual([]);
      expect(await sql`select id from workyard.queue_messages`).toEqual([]);
      expect(logs).toContain(`queues: "ledger": delivering again`);
    } finally {
      await sql?.end();
      await sup?.stop();
      await pg.dispose();
    }
  }, 60_000);
});
