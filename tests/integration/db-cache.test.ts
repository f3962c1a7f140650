/**
 * The read cache (cached() in lib/sdk/db.ts, lib/workers/db-cache/) in two workerd processes on one database, as two
 * nodes behind a load balancer run: a cached read is never older than its max age, never older than a write its
 * caller has seen acknowledged through the same process, and drops what another process wrote as soon as that
 * process's notification arrives. Node A and node B are two supervisors (each its own PgBouncer and workerd).
 */
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import type { Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { findPgbouncer } from "../../lib/node/data/pgbouncer.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { testJwtSecret } from "../helpers/auth.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";
import { eventually } from "../helpers/eventually.ts";
import { needs } from "../helpers/needs.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

const realDatabase = needs({
  suite: "the read cache across two workerd processes",
  service: "a real PostgreSQL and pgbouncer",
  available: inject("databaseUrl") !== null && findPgbouncer() !== undefined,
  fix: "PostgreSQL on 127.0.0.1:5432 and apt-get install -y pgbouncer; .ci/run provides both",
});

describe.runIf(realDatabase)("the read cache across two workerd processes", () => {
  let db: FreshDatabase;
  let sql: Sql;
  const projects: TestProject[] = [];
  const nodes: Supervisor[] = [];
  const logs: string[] = [];
  let a: Supervisor;
  let b: Supervisor;
  let serial = 0;

  beforeAll(async () => {
    db = await freshDatabase();
    await migrateUp(db.url, "migrations");
    sql = postgres(db.url, { max: 2, onnotice: () => {} });
    await sql`create view cache_probe_links as select code, url from links`;
    await sql`create table cache_probe_parent (id int primary key)`;
    await sql`create table cache_probe_child (id int primary key, parent_id int not null references cache_probe_parent on delete cascade)`;
    await sql`create table cache_probe_events (day int not null, n int not null) partition by list (day)`;
    for (const day of [1, 2])
      await sql.unsafe(`create table cache_probe_events_${day} partition of cache_probe_events for values in (${day})`);
    const env = { DATABASE_URL: db.url, AUTH_JWT_SECRET: testJwtSecret(), WORKERD_PROCESSES: "1" };
    for (const name of ["a", "b"]) {
      const project = await createTestProject({ fixtures: ["cache-probe"], realFunctions: false });
      projects.push(project);
      nodes.push(await startSupervisor({ paths: project.paths, host: "127.0.0.1", port: 0, env, log: (l) => logs.push(`[${name}] ${l}`) }));
    }
    [a, b] = nodes as [Supervisor, Supervisor];
  });

  afterAll(async () => {
    for (const n of nodes) await n.stop();
    await sql?.end();
    await db?.dispose();
    for (const p of projects) await p.dispose();
  });

  /** A link of the test's own, written straight to the database (no pool: nobody is told). */
  async function link(url: string): Promise<string> {
    const code = `c${process.pid}x${++serial}`;
    await sql`insert into links (code, url) values (${code}, ${url})`;
    return code;
  }
  const read = async (node: Supervisor, path: string): Promise<string | null> => {
    const res = await fetch(`${node.url}/cache-probe${path}`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { url: string | null }).url;
  };
  const write = async (node: Supervisor, path: string, url: string) => {
    const res = await fetch(`${node.url}/cache-probe${path}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url }),
    });
    expect(res.status).toBe(200);
  };
  /** Waits until the node answers from its cache (until it listens for invalidations, cached reads go to the database). */
  async function cachedNow(node: Supervisor) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const code = await link("https://example.com/probe");
      await read(node, `/link/${code}`);
      await sql`update links set url = 'https://example.com/probe-changed' where code = ${code}`;
      if ((await read(node, `/link/${code}`)) === "https://example.com/probe") return; // a hit: the direct update was not seen
      if (Date.now() > deadline) throw new Error("the read cache never served a hit in 10 s");
      await sleep(100);
    }
  }

  it("a cached read is answered from the cache, and never older than its max age", async () => {
    const code = await link("https://example.com/v1");
    await cachedNow(a);
    const sentFirst = Date.now();
    expect(await read(a, `/link/${code}?age=1`)).toBe("https://example.com/v1");
    const firstDone = Date.now();
    // Written around the pools: nobody is told, so only the max age bounds what the cache returns.
    await sql`update links set url = 'https://example.com/v2' where code = ${code}`;
    const seen: { at: number; url: string | null }[] = [];
    while (Date.now() < sentFirst + 2500) {
      const at = Date.now();
      seen.push({ at, url: await read(a, `/link/${code}?age=1`) });
      await sleep(50);
    }
    // The first entry may be served while younger than 1 s (its read was sent at or after sentFirst) ...
    expect(seen.some((s) => s.url === "https://example.com/v1")).toBe(true);
    // ... and no request sent 1 s after the read that filled it finished may see it.
    const late = seen.filter((s) => s.at >= firstDone + 1000);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((s) => s.url === "https://example.com/v2")).toBe(true);
  });

  it("a write through the pool is seen by the next cached read in the same process, and soon in the other", async () => {
    const code = await link("https://example.com/w1");
    await cachedNow(a);
    await cachedNow(b);
    expect(await read(a, `/link/${code}?age=3600`)).toBe("https://example.com/w1");
    expect(await read(b, `/link/${code}?age=3600`)).toBe("https://example.com/w1");
    await write(a, `/link/${code}`, "https://example.com/w2");
    // Acknowledged: node A must not answer from before the write.
    expect(await read(a, `/link/${code}?age=3600`)).toBe("https://example.com/w2");
    // Node B drops its entry when A's notification arrives (sent before A acknowledged the write).
    const acknowledged = Date.now();
    let viaB: string | null = null;
    while (Date.now() - acknowledged < 2000 && (viaB = await read(b, `/link/${code}?age=3600`)) !== "https://example.com/w2")
      await sleep(10);
    expect(viaB).toBe("https://example.com/w2");
    expect(Date.now() - acknowledged).toBeLessThan(1000);
  });

  it("writes from 32 clients at once for 2 s all finish, and a read after them sees the last", async () => {
    // With postgres.js pipelining queries behind PgBouncer 1.18 in transaction mode, a write's notification sent on
    // a busy connection lost its answer and every request hung (found by the bench's write row): the pool no
    // longer pipelines (lib/sdk/db.ts).
    const code = await link("https://example.com/many-0");
    await cachedNow(a);
    let n = 0;
    const until = Date.now() + 2000;
    const client = async () => {
      const statuses: number[] = [];
      while (Date.now() < until) {
        const res =
          ++n % 2 === 0
            ? await fetch(`${a.url}/cache-probe/touch/${code}`, { method: "POST", signal: AbortSignal.timeout(5000) })
            : await fetch(`${a.url}/cache-probe/link/${code}`, {
                method: "PUT",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({ url: `https://example.com/many-${n}` }),
                signal: AbortSignal.timeout(5000),
              });
        statuses.push(res.status);
      }
      return statuses;
    };
    const statuses = (await Promise.all(Array.from({ length: 32 }, client))).flat();
    expect(statuses.length).toBeGreaterThan(32);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const [row] = await sql<{ url: string }[]>`select url from links where code = ${code}`;
    expect(await read(a, `/link/${code}?age=3600`)).toBe(row?.url);
  });

  it("a transaction's writes invalidate after its commit, in both processes", async () => {
    const code = await link("https://example.com/t1");
    await cachedNow(a);
    await cachedNow(b);
    await write(b, `/link/${code}/tx`, "https://example.com/t2");
    expect(await read(b, `/link/${code}?age=3600`)).toBe("https://example.com/t2");
    const start = Date.now();
    let viaA: string | null = null;
    while (Date.now() - start < 2000 && (viaA = await read(a, `/link/${code}?age=3600`)) !== "https://example.com/t2") await sleep(10);
    expect(viaA).toBe("https://example.com/t2");
  });

  it("a cron's write through withDatabase reaches the caches of both processes", async () => {
    const code = `cron-${process.pid}-${++serial}`;
    await sql`insert into links (code, url) values (${code}, 'https://example.com/cron')`;
    await cachedNow(a);
    await cachedNow(b);
    for (const node of [a, b]) expect(await read(node, `/link/${code}?age=3600`)).toBe("https://example.com/cron");
    const run = await a.scheduler?.trigger("cache-probe");
    expect(run).toMatchObject({ status: "ok" });
    for (const node of [a, b]) {
      expect(await eventually(async () => (await read(node, `/link/${code}?age=3600`)) === "https://example.com/cron#cron", 2000)).toBe(
        true,
      );
    }
  });

  it("writes in sql.batch and on a reserved connection with its own BEGIN and COMMIT invalidate too", async () => {
    const code = await link("https://example.com/b1");
    await cachedNow(a);
    expect(await read(a, `/link/${code}?age=3600`)).toBe("https://example.com/b1");
    await write(a, `/link/${code}/batch`, "https://example.com/b2");
    expect(await read(a, `/link/${code}?age=3600`)).toBe("https://example.com/b2");
    await write(a, `/link/${code}/reserved`, "https://example.com/b3");
    expect(await read(a, `/link/${code}?age=3600`)).toBe("https://example.com/b3");
  });

  it("a delete that cascades through a foreign key invalidates reads of the child table", async () => {
    const parent = 1000 + ++serial;
    await sql`insert into cache_probe_parent (id) values (${parent})`;
    await sql`insert into cache_probe_child (id, parent_id) values (${parent * 10}, ${parent}), (${parent * 10 + 1}, ${parent})`;
    await cachedNow(a);
    const children = async () => ((await (await fetch(`${a.url}/cache-probe/children/${parent}`)).json()) as { n: number }).n;
    expect(await children()).toBe(2);
    expect(await children()).toBe(2);
    expect((await fetch(`${a.url}/cache-probe/parent/${parent}`, { method: "DELETE" })).status).toBe(200);
    expect(await children()).toBe(0);
  });

  it("a write straight into one partition invalidates reads through the parent, whatever partition their plan named", async () => {
    await cachedNow(a);
    const events = async (day: number) => ((await (await fetch(`${a.url}/cache-probe/events/${day}`)).json()) as { n: number }).n;
    // The first read's plan (day 1) scans partition 1 only; the same text with day 2 scans partition 2.
    expect(await events(1)).toBe(0);
    expect(await events(2)).toBe(0);
    expect(await events(2)).toBe(0);
    expect((await fetch(`${a.url}/cache-probe/events/2`, { method: "POST" })).status).toBe(200);
    expect(await events(2)).toBe(1);
  });

  it("a read through a view is invalidated by a write to the table under it", async () => {
    const code = await link("https://example.com/view1");
    await cachedNow(a);
    expect(await read(a, `/view/${code}?age=3600`)).toBe("https://example.com/view1");
    expect(await read(a, `/view/${code}?age=3600`)).toBe("https://example.com/view1");
    await write(a, `/link/${code}`, "https://example.com/view2");
    expect(await read(a, `/view/${code}?age=3600`)).toBe("https://example.com/view2");
  });

  it("after its notification connection drops, a host drops everything it cached and listens again", async () => {
    await cachedNow(a);
    const code = await link("https://example.com/o1");
    expect(await read(a, `/link/${code}?age=3600`)).toBe("https://example.com/o1");
    // Written around the pools: only dropping everything on reconnecting can make node A see it within the hour.
    await sql`update links set url = 'https://example.com/o2' where code = ${code}`;
    expect(await read(a, `/link/${code}?age=3600`)).toBe("https://example.com/o1");
    const killed = await sql`select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and query ilike 'listen %' and pid <> pg_backend_pid()`;
    expect(killed.length).toBeGreaterThan(0);
    expect(await eventually(async () => (await read(a, `/link/${code}?age=3600`)) === "https://example.com/o2", 10_000)).toBe(true);
    expect(logs.some((l) => l.startsWith("[a]") && l.includes("the notification connection closed"))).toBe(true);
    await cachedNow(a); // and it caches again
  });

  it("keeps a result within an entry's byte budget, and reads one over it from the database every time", async () => {
    await cachedNow(a);
    for (const [pad, kept] of [
      [1_000, true],
      [600_000, false], // about 1.2 MB as V8 holds it: over the 1 MiB an entry may take
    ] as const) {
      const code = await link("https://example.com/padded");
      expect(await read(a, `/padded/${code}?pad=${pad}`)).toBe("https://example.com/padded");
      await sql`update links set url = 'https://example.com/padded-changed' where code = ${code}`;
      expect(await read(a, `/padded/${code}?pad=${pad}`)).toBe(kept ? "https://example.com/padded" : "https://example.com/padded-changed");
    }
  });

  it("cached rows are frozen (bytes too can be cached), and /metrics counts hits, misses and invalidations", async () => {
    const code = await link("https://example.com/frozen");
    const res = await fetch(`${a.url}/cache-probe/frozen/${code}`);
    expect(await res.json()).toEqual({ frozen: true });
    for (let i = 0; i < 2; i++) {
      const bytes = await fetch(`${a.url}/cache-probe/bytes/${code}`);
      expect(await bytes.json()).toEqual({ length: "https://example.com/frozen".length, u: "https://example.com/frozen" });
    }
    // Trace records reach the collector in batches: wait for the counts to show.
    const count = async (name: string, label: string) => {
      const text = await (await fetch(`${a.internalUrl}/metrics`, { headers: { authorization: `Bearer ${a.internalToken}` } })).text();
      return Number(new RegExp(`workyard_db_cache_${name}\\{function="cache-probe",${label}\\} (\\d+)`).exec(text)?.[1] ?? 0);
    };
    expect(
      await eventually(async () => {
        const counts = await Promise.all([
          count("reads_total", 'outcome="hit"'),
          count("reads_total", 'outcome="miss"'),
          count("invalidations_total", 'origin="local"'),
          count("invalidations_total", 'origin="remote"'),
        ]);
        return counts.every((n) => n > 0);
      }),
    ).toBe(true);
  });
});
