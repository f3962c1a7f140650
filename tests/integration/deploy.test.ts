/**
 * Zero-downtime deploys: a bounded load on loopback (keep-alive and fresh connections, reads and writes)
 * runs through a deploy and a rollback of a visibly different release, and not one request fails and not
 * one acknowledged write is lost. Then releases that fail (to bundle, to migrate, to become ready) leave the
 * live one serving. Real workerd processes (two, sharing one socket), real PostgreSQL through PgBouncer.
 */
import { randomUUID } from "node:crypto";
import { Agent, request } from "node:http";
import { cp, mkdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { build } from "../../lib/node/build/build.ts";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { deploy, releasesTable, rollback } from "../../lib/node/releases/commands.ts";
import { listReleases } from "../../lib/node/releases/history.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

const redisUrl = inject("redisUrl");
let project: TestProject;
let db: FreshDatabase;
let sup: Supervisor;
const logs: string[] = [];
const log = (line: string) => logs.push(line);

/** The binaries the live workerd processes were started from (/proc/<pid>/exe names the path exec was given). */
async function runningBinaries(): Promise<string[]> {
  return [...new Set(await Promise.all(sup.pids().map((pid) => readlink(`/proc/${pid}/exe`))))];
}

async function setVersion(version: string): Promise<void> {
  const file = join(project.paths.functions, "rollout", "wrangler.toml");
  await writeFile(file, (await readFile(file, "utf8")).replace(/VERSION = "[^"]*"/, `VERSION = "${version}"`));
}

beforeAll(async () => {
  project = await createTestProject({ fixtures: ["rollout"], realFunctions: false });
  // Its own copy of the migrations, so that a deploy can bring a new one.
  await rm(project.paths.migrations, { force: true });
  await cp(join(process.cwd(), "migrations"), project.paths.migrations, { recursive: true });
  db = await freshDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  await sql`create table rollout_writes (id uuid primary key, version text not null, at timestamptz not null default now())`;
  await sql.end();
  await migrateUp(db.url, project.paths.migrations);
  sup = await startSupervisor({
    paths: project.paths,
    host: "127.0.0.1",
    port: 0,
    env: {
      DATABASE_URL: db.url,
      WORKERD_PROCESSES: "2",
      WORKYARD_SCHEDULER: "off",
      RELEASES_KEPT: "2",
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    },
    log,
  });
}, 120_000);

afterAll(async () => {
  await sup?.stop();
  await db?.dispose();
  await project?.dispose();
});

interface Outcome {
  kind: "read" | "write";
  keepAlive: boolean;
  startedAt: number;
  status: number;
  version?: string;
  id?: string;
  error?: string;
}

/** One request with node:http: on a shared keep-alive agent, or on a connection of its own. */
function send(
  agent: Agent | false,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${sup.url}${path}`,
      { method, agent, headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {} },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> });
          } catch {
            resolve({ status: res.statusCode ?? 0, json: { text } });
          }
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", reject);
    req.end(payload);
  });
}

/**
 * `concurrency` loops, each sending requests one after another until `stop()` and at least `min` requests
 * in all, at most `max`: every third a write, every fourth on a fresh connection.
 */
function load({ concurrency = 20, min = 2000, max = 40_000 } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const outcomes: Outcome[] = [];
  let stopped = false;
  let n = 0;
  const loop = async () => {
    while ((!stopped || outcomes.length < min) && n < max) {
      const i = n++;
      const keepAlive = i % 4 !== 0;
      const kind = i % 3 === 0 ? "write" : "read";
      const startedAt = performance.now();
      const id = kind === "write" ? randomUUID() : undefined;
      try {
        const res =
          kind === "write"
            ? await send(keepAlive ? agent : false, "POST", "/rollout/write", { id })
            : await send(keepAlive ? agent : false, "GET", "/rollout");
        outcomes.push({ kind, keepAlive, startedAt, status: res.status, version: res.json.version as string | undefined, id });
      } catch (err) {
        outcomes.push({ kind, keepAlive, startedAt, status: 0, id, error: (err as Error).message });
      }
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, loop)).finally(() => agent.destroy());
  return {
    outcomes,
    /** Resolves once `count` more requests have finished. */
    async after(count: number) {
      const target = outcomes.length + count;
      while (outcomes.length < target && n < max) await new Promise((r) => setTimeout(r, 20));
    },
    async stop() {
      stopped = true;
      await done;
      return outcomes;
    },
  };
}

describe("deploy and rollback under load", () => {
  it("switches to the new release and back with zero failed requests and zero lost writes", async () => {
    const first = sup.release.manifest.id;
    expect(sup.processes).toBe(2);
    expect(sup.pids()).toHaveLength(2);
    expect((await send(false, "GET", "/rollout")).json).toEqual({ version: "one" });

    // The next release, with a pending migration. Built before the load, so the load spans the switches,
    // not Wrangler; the deploy below finds it built (the same sources make the same release).
    await setVersion("two");
    await writeFile(
      join(project.paths.migrations, "9001_rollout_marker.sql"),
      "-- Up Migration\nCREATE TABLE rollout_marker (x int);\n\n-- Down Migration\nDROP TABLE rollout_marker;\n",
    );
    const second = (await build(project.paths)).manifest.id;
    expect(second).not.toBe(first);

    const running = load();
    await running.after(600);
    const deployStarted = performance.now();
    const deployed = await deploy(project.paths, log);
    const deployDone = performance.now();
    expect(deployed).toMatchObject({ live: second, from: first, unchanged: false, migrations: ["9001_rollout_marker"], previous: first });
    // Each release runs on the workerd kept in its own folder (release-runtime.ts): a rollback after an upgrade
    // returns to the old runtime too.
    expect(await runningBinaries()).toEqual([join(project.paths.releases, second, "runtime", "workerd")]);
    await running.after(600);
    const rolled = await rollback(project.paths, log);
    const rollbackDone = performance.now();
    expect(rolled).toMatchObject({ live: first, from: second, migrations: [] });
    expect(await runningBinaries()).toEqual([join(project.paths.releases, first, "runtime", "workerd")]);
    await running.after(600);
    const outcomes = await running.stop();
    console.log(
      `[deploy] ${outcomes.length} requests (${outcomes.filter((o) => o.kind === "write").length} writes, ` +
        `${outcomes.filter((o) => !o.keepAlive).length} on fresh connections), deploy ${Math.round(deployDone - deployStarted)} ms, ` +
        `rollback ${Math.round(rollbackDone - deployDone)} ms (with 600 requests between)`,
    );

    const failed = outcomes.filter((o) => (o.kind === "write" ? o.status !== 201 : o.status !== 200));
    expect(failed.map((o) => `${o.kind}${o.keepAlive ? "" : " (fresh connection)"}: ${o.status} ${o.error ?? ""}`)).toEqual([]);
    expect(outcomes.length).toBeGreaterThanOrEqual(2000);
    expect(outcomes.filter((o) => o.keepAlive).length).toBeGreaterThan(1000);
    expect(outcomes.filter((o) => !o.keepAlive).length).toBeGreaterThan(300);

    // Every acknowledged write is in the table, once, with the version that acknowledged it.
    const writes = outcomes.filter((o) => o.kind === "write");
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const rows = await sql<{ id: string; version: string }[]>`select id, version from rollout_writes`;
    const [marker] = await sql<{ exists: boolean }[]>`select to_regclass('rollout_marker') is not null as exists`;
    await sql.end();
    const stored = new Map(rows.map((r) => [r.id, r.version]));
    expect(writes.filter((w) => stored.get(w.id ?? "") !== w.version)).toEqual([]);
    expect(rows).toHaveLength(writes.length);
    expect(marker?.exists).toBe(true);

    // Responses switched: only "one" before the deploy began, only "two" for requests that began after it
    // finished (the old processes were gone), and only "one" again after the rollback.
    const versionsOf = (from: number, to: number) =>
      new Set(outcomes.filter((o) => o.startedAt >= from && o.startedAt < to).map((o) => o.version));
    expect(versionsOf(0, deployStarted)).toEqual(new Set(["one"]));
    expect(versionsOf(deployDone, rollbackDone - 5000 > deployDone ? rollbackDone - 5000 : deployDone + 1)).not.toContain("one");
    expect(outcomes.some((o) => o.version === "two")).toBe(true);
    expect(versionsOf(rollbackDone, Infinity)).toEqual(new Set(["one"]));
    expect(sup.release.manifest.id).toBe(first);
    expect((await releasesTable(project.paths)).split("\n").find((l) => l.includes(first))).toMatch(/^\*.*live$/);
  }, 180_000);
});

describe("a release that fails", () => {
  async function expectStillServing(live: string) {
    expect(sup.release.manifest.id).toBe(live);
    expect((await send(false, "GET", "/rollout")).json).toEqual({ version: "one" });
  }

  it("to bundle is not deployed, and says why", async () => {
    const live = sup.release.manifest.id;
    await mkdir(join(project.paths.functions, "broken"));
    await writeFile(
      join(project.paths.functions, "broken", "index.ts"),
      'import { nothing } from "../missing.ts";\nexport default { fetch: () => new Response(nothing) };\n',
    );
    try {
      await expect(deploy(project.paths, log)).rejects.toThrow(/failed to bundle[\s\S]*broken[\s\S]*the live release keeps serving/);
      await expectStillServing(live);
    } finally {
      await rm(join(project.paths.functions, "broken"), { recursive: true, force: true });
    }
  }, 120_000);

  it("to become ready is stopped, and the old release keeps serving", async () => {
    const live = sup.release.manifest.id;
    const before = sup.pids();
    await mkdir(join(project.paths.functions, "crashes"));
    await writeFile(
      join(project.paths.functions, "crashes", "index.ts"),
      'throw new Error("crashes at startup");\nexport default { fetch: () => new Response("never") };\n',
    );
    try {
      await expect(deploy(project.paths, log)).rejects.toThrow(new RegExp(`did not become ready[\\s\\S]*Release ${live} keeps serving`));
      await expectStillServing(live);
      expect(sup.pids()).toEqual(before);
    } finally {
      await rm(join(project.paths.functions, "crashes"), { recursive: true, force: true });
    }
  }, 120_000);

  it("to migrate is not deployed, and says which migration", async () => {
    const live = sup.release.manifest.id;
    await setVersion("three");
    const bad = join(project.paths.migrations, "9002_broken.sql");
    await writeFile(bad, "-- Up Migration\nALTER TABLE no_such_table ADD COLUMN x int;\n\n-- Down Migration\n");
    try {
      await expect(deploy(project.paths, log)).rejects.toThrow(new RegExp(`9002_broken[\\s\\S]*Release ${live} keeps serving`));
      await expectStillServing(live);
    } finally {
      await rm(bad);
      await setVersion("one");
    }
  }, 120_000);

  it("leaves the failed releases for a successful deploy to prune: RELEASES_KEPT kept, never the live one or its predecessor", async () => {
    const live = sup.release.manifest.id;
    expect((await listReleases(project.paths)).length).toBeGreaterThan(3);
    await setVersion("four");
    try {
      const result = await deploy(project.paths, log);
      const ids = (await listReleases(project.paths)).map((r) => r.id);
      expect(result.pruned.length).toBeGreaterThan(0);
      // RELEASES_KEPT=2: the new live one and the newest before it; the predecessor is kept besides.
      expect(ids).toEqual(expect.arrayContaining([result.live, live]));
      expect(ids.length).toBeLessThanOrEqual(3);
      await rollback(project.paths, log);
    } finally {
      await setVersion("one");
    }
    expect(sup.release.manifest.id).toBe(live);
  }, 120_000);
});

describe("processes", () => {
  it("restarts a process that dies, while the others keep serving", async () => {
    const [victim, other] = sup.pids();
    process.kill(victim ?? -1, "SIGKILL");
    expect((await send(false, "GET", "/rollout")).status).toBe(200);
    await expect.poll(() => sup.pids().includes(victim ?? -1), { timeout: 30_000, interval: 100 }).toBe(false);
    const after = sup.pids();
    expect(after).toHaveLength(2);
    expect(after).toContain(other);
    expect(logs.some((l) => /workerd #\d exited unexpectedly/.test(l))).toBe(true);
  }, 60_000);
});
