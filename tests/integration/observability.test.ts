/**
 * Observability end to end, on one running stack: real workerd whose workers make their own trace records,
 * the supervisor's collector, the run's PostgreSQL (through PgBouncer) and Redis. A few hundred requests
 * and forced errors, then: the metrics count them, the error store groups them with their TypeScript
 * location, `npm run logs` shows the lines, usage is rolled up, and the dashboard shows live figures in
 * real headless Chromium (a screenshot is saved under .workyard/screenshots/).
 */
import { spawn } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import type { Sql } from "postgres";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { matches } from "../../lib/node/observe/log-stream.ts";
import type { ConsoleLine, LogLine } from "../../lib/node/observe/records.ts";
import { rollUpUsage } from "../../lib/node/observe/usage.ts";
import { startCollector } from "../../lib/node/observe/collector.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { listenSocket } from "../../lib/node/runtime/listen-socket.ts";
import { INTERNAL_TOKEN_VAR } from "../../lib/node/build/serve-config.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import { bearer, mintToken, testJwtSecret } from "../helpers/auth.ts";
import { startWorkerd, waitUntilAnswering } from "../../lib/node/runtime/workerd-process.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { launchChromium } from "../helpers/chromium.ts";
import type { Chromium } from "../helpers/chromium.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";
import { createTestProject } from "../helpers/test-project.ts";
import { internalSocket } from "../helpers/internal-socket.ts";
import type { TestProject } from "../helpers/test-project.ts";

const databaseUrl = inject("databaseUrl");
const redisUrl = inject("redisUrl");
const repo = projectPaths();
let project: TestProject;
let sup: Supervisor;
let sql: Sql;
const children: ChildProcessWithoutNullStreams[] = [];
const jwtSecret = testJwtSecret();

let fresh: FreshDatabase | undefined;

beforeAll(async () => {
  project = await createTestProject({
    fixtures: ["boom", "oops", "hang", "tick"],
  });
  // A database of its own: other test files running at the same time add their own requests to the usage tables.
  if (databaseUrl) {
    fresh = await freshDatabase();
    await migrateUp(fresh.url, project.paths.migrations);
  }
  sup = await startSupervisor({
    paths: project.paths,
    host: "127.0.0.1",
    port: 0,
    env: { AUTH_JWT_SECRET: jwtSecret, ...(fresh ? { DATABASE_URL: fresh.url } : {}), ...(redisUrl ? { REDIS_URL: redisUrl } : {}) },
    log: () => {},
  });
  sql = postgres(sup.backends.database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  for (const child of children) child.kill();
  await sql?.end();
  await sup?.stop();
  await fresh?.dispose();
  await project?.dispose();
});

const { internal, metric } = internalSocket(() => sup);

/** Sends `count` requests to `path`, `concurrency` at a time; returns the responses' request ids. */
async function load(path: string, count: number, concurrency = 8): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const res = await fetch(`${sup.url}${path}`);
        await res.arrayBuffer();
        ids.push(res.headers.get("x-request-id") ?? "");
      }
    }),
  );
  return ids;
}

const forced: Record<string, string> = {};

describe("after a few hundred requests and forced errors", () => {
  beforeAll(async () => {
    await load("/hello", 300);
    await load("/hello/nope", 20);
    for (const what of ["widget-7", "widget-8"]) {
      const res = await fetch(`${sup.url}/oops/fail/${what}`, { headers: { "x-request-id": `forced-oops-${what}` } });
      expect(res.status).toBe(500);
      expect(await res.text()).not.toContain("oops: could not handle"); // the client sees nothing of it
      forced[what] = res.headers.get("x-request-id") ?? "";
    }
    expect((await fetch(`${sup.url}/boom`)).status).toBe(500);
    expect((await fetch(`${sup.url}/hang/throw`)).status).toBe(500);
    expect((await fetch(`${sup.url}/hang`)).status).toBe(504);
  });

  it("the metrics count them, on the internal socket only", async () => {
    expect((await fetch(`${sup.internalUrl}/metrics`)).status).toBe(401);
    await expect
      .poll(() => metric('workyard_requests_total{function="hello",method="GET",status_class="2xx"}'), { timeout: 10_000 })
      .toBe(300);
    expect(await metric('workyard_requests_total{function="hello",method="GET",status_class="4xx"}')).toBe(20);
    expect(await metric('workyard_requests_total{function="oops",method="GET",status_class="5xx"}')).toBe(2);
    expect(await metric('workyard_request_duration_seconds_count{function="hello"}')).toBe(320);
    expect(await metric('workyard_request_duration_seconds_bucket{le="30",function="hello"}')).toBe(320);
    await expect.poll(() => metric('workyard_errors_total{function="oops",kind="logged"}'), { timeout: 10_000 }).toBe(2);
    await expect.poll(() => metric('workyard_errors_total{function="boom",kind="exception"}'), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => metric('workyard_errors_total{function="hang",kind="5xx"}'), { timeout: 10_000 }).toBe(1);
    expect(await metric('workyard_requests_in_flight{function="hello"}')).toBeGreaterThanOrEqual(0);
    expect(await metric('workyard_log_lines_total{function="oops",level="info"}')).toBe(2);
    expect(await metric("workyard_trace_batches_rejected_total")).toBe(0);
    const text = await (await internal("/metrics")).text();
    expect(text).toContain("# TYPE workyard_request_duration_seconds histogram");
    if (sup.backends.database.kind === "postgres") {
      const db = new URL(fresh?.url ?? "").pathname.slice(1);
      expect(await metric(`workyard_pgbouncer_servers_idle{database="${db}"}`)).toBeGreaterThanOrEqual(0);
      expect(await metric(`workyard_pgbouncer_transactions_total{database="${db}"}`)).toBeGreaterThan(0);
    } else {
      expect(text).not.toContain("workyard_pgbouncer_"); // no PgBouncer in front of the embedded database
    }
  });

  it("the Redis proxy's own counters are in the metrics", async () => {
    const headers = { "content-type": "application/json", ...bearer(await mintToken(jwtSecret)) };
    const res = await fetch(`${sup.url}/links`, { method: "POST", headers, body: JSON.stringify({ url: "https://example.com/obs" }) });
    expect(res.status).toBe(201);
    // With a real Redis, functions' commands go to the Redis object (docs/redis.md); /readyz still asks the proxy.
    expect((await internal("/readyz")).status).toBe(200);
    await expect.poll(() => metric('workyard_redis_proxy_responses_total{status_class="2xx"}')).toBeGreaterThan(0);
    expect(await metric("workyard_redis_proxy_subscriptions")).toBe(0);
  });

  it("the error store groups each error, source-mapped to its TypeScript file and line", async () => {
    type Group = {
      function: string;
      kind: string;
      message: string;
      location: string | null;
      count: number;
      latest: { requestId: string; status: number; stack: string };
    };
    const groups = async () => ((await (await internal("/errors")).json()) as { errors: Group[] }).errors;
    await expect.poll(async () => (await groups()).find((g) => g.function === "oops")?.count, { timeout: 10_000 }).toBe(2);
    const all = await groups();
    const oops = all.find((g) => g.function === "oops");
    expect(oops).toMatchObject({ kind: "logged", location: "functions/oops/index.ts:11:9", message: "oops: could not handle widget-8" });
    expect(oops?.latest.requestId).toBe(forced["widget-8"]);
    expect(oops?.latest.status).toBe(500);
    expect(oops?.latest.stack).toMatch(/^Error: oops: could not handle widget-8\n\s+at .*functions\/oops\/index\.ts:11:9/);
    // Uncaught in its own worker: the exception from the trace.
    expect(all.find((g) => g.function === "boom")).toMatchObject({ kind: "exception", location: "functions/boom/index.ts:5:11", count: 1 });
    // Thrown in the gateway's isolate (isolate = false): mapped through the gateway's bundle.
    expect(all.find((g) => g.function === "hang" && g.kind === "logged")).toMatchObject({ location: "functions/hang/index.ts:9:34" });
    // A 5xx with no error behind it (the deadline).
    expect(all.find((g) => g.function === "hang" && g.kind === "5xx")).toMatchObject({ message: "GET answered 504", count: 1 });
    const [row] = await sql<
      { n: string }[]
    >`select count(*) as n from workyard.error_events where fingerprint in (select fingerprint from workyard.error_groups where function_name = 'oops')`;
    expect(Number(row?.n)).toBe(2);
  });

  it("old errors are pruned by the retention limit", async () => {
    await sql`insert into workyard.error_groups (fingerprint, function_name, kind, name, message, count, first_seen, last_seen)
              values ('old-one', 'ancient', 'exception', 'Error', 'long ago', 1, now() - interval '40 days', now() - interval '40 days')`;
    await sql`insert into workyard.error_events (fingerprint, occurred_at, function_name, message) values ('old-one', now() - interval '40 days', 'ancient', 'long ago')`;
    await sup.collector.errors.prune(14);
    expect(await sql`select 1 from workyard.error_groups where fingerprint = 'old-one'`).toHaveLength(0);
    expect(await sql`select 1 from workyard.error_events where fingerprint = 'old-one'`).toHaveLength(0);
    expect((await sql`select 1 from workyard.error_groups where function_name = 'oops'`).length).toBe(1);
  });

  it("usage per function is rolled up into hours and days", async () => {
    await sup.collector.runPlatformJob(); // writes the pending minute counts (complete hours move to usage_hourly)
    // Roll the current hour too, as the job does once the hour is over.
    await rollUpUsage(sql, new Date(Date.now() + 3_600_000));
    const [hour] = await sql<
      { requests: string; errors: string }[]
    >`select sum(requests) as requests, sum(errors) as errors from workyard.usage_hourly where function_name = 'hello'`;
    expect(Number(hour?.requests)).toBe(320);
    expect(Number(hour?.errors)).toBe(0);
    const usage = (await (await internal("/usage?by=day&days=2")).json()) as {
      usage: { function: string; requests: number; errors: number }[];
    };
    expect(usage.usage.find((u) => u.function === "oops")).toMatchObject({ requests: 2, errors: 2 });
    expect(await sql`select 1 from workyard.usage_minutes where bucket < date_trunc('hour', now())`).toHaveLength(0);
  });

  it("cron runs and their outcome are in the metrics and the log", async () => {
    const run = await sup.scheduler?.trigger("tick");
    expect(run?.status).toBe("ok");
    // Its schedule (every 5 minutes) may also fire during the run: compare with what the database holds.
    const recorded = async () =>
      Number(
        (await sql<{ n: string }[]>`select count(*) as n from workyard.cron_runs where function_name = 'tick' and status = 'ok'`)[0]?.n,
      );
    await expect
      .poll(async () => (await metric('workyard_scheduled_invocations_total{function="tick",outcome="ok"}')) === (await recorded()), {
        timeout: 10_000,
      })
      .toBe(true);
    expect(await metric('workyard_cron_runs{function="tick",cron="*/5 * * * *",status="ok"}')).toBe(await recorded());
    expect(await metric('workyard_cron_last_run_timestamp_seconds{function="tick",cron="*/5 * * * *",status="ok"}')).toBeGreaterThan(
      Date.now() / 1000 - 60,
    );
  });

  it("a scheduled() run that throws is recorded with its cron and TypeScript location", async () => {
    const res = await internal(`/scheduled/tick?cron=${encodeURIComponent("0 0 * * *")}`, { method: "POST" });
    expect(await res.json()).toMatchObject({ outcome: "exception" });
    type Group = {
      function: string;
      kind: string;
      message: string;
      location: string | null;
      latest: { cron: string | null; requestId: string | null };
    };
    const find = async () => ((await (await internal("/errors?function=tick")).json()) as { errors: Group[] }).errors[0];
    await expect.poll(find, { timeout: 10_000 }).toMatchObject({
      kind: "exception",
      message: 'tick: no task for cron "0 0 * * *"',
      location: "functions/tick/index.ts:8:50",
      latest: { cron: "0 0 * * *", requestId: null },
    });
  });
});

describe("npm run logs", () => {
  function logs(...args: string[]) {
    const child = spawn(process.execPath, [join(repo.root, "scripts/logs.ts"), ...args], {
      env: { ...process.env, WORKYARD_ROOT: project.paths.root },
    });
    children.push(child);
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
    return { child, output: () => out, exited: new Promise<number | null>((resolve) => child.once("exit", resolve)) };
  }

  it("follows one function's requests and console lines live, with their request id", async () => {
    const follower = logs("oops", "--tail", "0");
    // It is following once the collector has it as a follower: retry the request until the line arrives.
    await expect
      .poll(
        async () => {
          await fetch(`${sup.url}/oops/fail/live-1`, { headers: { "x-request-id": "live-request-0001" } });
          await fetch(`${sup.url}/hello`);
          return follower.output();
        },
        { timeout: 20_000, interval: 1000 },
      )
      .toMatch(/ERROR oops\s+500 GET \/oops\/fail\/live-1 \d+ ms .*\[live-request-0001\]/);
    expect(follower.output()).toMatch(/INFO {2}oops\s+about to fail on live-1 {2}\[live-request-0001\]/);
    expect(follower.output()).not.toContain("hello"); // only the function asked for
    follower.child.kill();
  });

  it("keeps each console line of a function in the gateway's isolate with its own request, when requests overlap", async () => {
    const ids = ["inline-a-0001", "inline-b-0002"];
    await Promise.all(ids.map((id) => fetch(`${sup.url}/hang/say/${id}`, { headers: { "x-request-id": id } })));
    const said = async () => {
      const out = logs("hang", "--tail", "100", "--no-follow", "--json");
      await out.exited;
      return out
        .output()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as LogLine)
        .filter((l): l is ConsoleLine => l.type === "log" && l.message.includes(" line from "));
    };
    await expect.poll(async () => (await said()).length, { timeout: 10_000 }).toBe(4);
    for (const line of await said()) {
      const who = /line from (\S+)$/.exec(line.message)?.[1];
      expect(line.requestId).toBe(who);
      expect(line.level).toBe(line.message.startsWith("first") ? "info" : "warn");
    }
  });

  it("filters by status and level, and prints JSON lines with --json", async () => {
    const errorsOnly = logs("--status", "5xx", "--tail", "100", "--no-follow", "--json");
    expect(await errorsOnly.exited).toBe(0);
    const lines = errorsOnly
      .output()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as LogLine);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const l of lines) expect(l).toMatchObject({ type: "request", level: "error" });
    expect(lines.map((l) => l.type === "request" && l.status)).toContain(504);

    const warnings = logs("hello", "--level", "warn", "--tail", "100", "--no-follow", "--json");
    expect(await warnings.exited).toBe(0);
    const warned = warnings
      .output()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as LogLine);
    expect(warned).toHaveLength(20); // the 404s
    expect(warned.every((l) => l.type === "request" && l.status === 404)).toBe(true);
  });

  it("refuses a bad filter with a message", async () => {
    const bad = logs("--status", "teapot", "--no-follow");
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/status is like 5xx or 404/);
  });

  it("the same lines are written to the rotating log file", async () => {
    const text = await readFile(join(project.paths.logs, "requests.log"), "utf8");
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as LogLine);
    expect(lines.filter((l) => l.type === "request" && l.function === "hello" && l.status === 200).length).toBeGreaterThanOrEqual(300);
    expect(lines.find((l) => l.type === "log" && l.requestId === forced["widget-7"])).toMatchObject({
      function: "oops",
      message: "about to fail on widget-7",
    });
  });

  it("filters match what they say", () => {
    const req: LogLine = {
      time: "",
      type: "request",
      level: "warn",
      requestId: "r",
      function: "a",
      method: "GET",
      path: "/",
      status: 404,
      durationMs: 1,
      clientIp: "",
    };
    expect(matches(req, { status: "4xx" })).toBe(true);
    expect(matches(req, { status: "404" })).toBe(true);
    expect(matches(req, { status: "5xx" })).toBe(false);
    expect(matches(req, { level: "error" })).toBe(false);
    expect(matches(req, { function: "b" })).toBe(false);
  });
});

describe("several workerd processes", () => {
  it("report to the one collector, so their counts add up", async () => {
    // A second workerd on the same release, as another process would run it, reporting to the same collector.
    const socket = await listenSocket("127.0.0.1", 0);
    const internalSocket = await listenSocket("127.0.0.1", 0);
    const second = startWorkerd({
      releaseDir: sup.release.releaseDir,
      socket,
      internalSocket,
      env: { [INTERNAL_TOKEN_VAR]: "second", WORKYARD_COLLECTOR_URL: sup.collector.url, WORKYARD_COLLECTOR_TOKEN: sup.collector.token },
      onLine: () => {},
    });
    try {
      const secondUrl = `http://127.0.0.1:${socket.port}`;
      await waitUntilAnswering(secondUrl, second);
      const requests = async (base: string, n: number) => {
        for (let i = 0; i < n; i++) await (await fetch(`${base}/oops`)).arrayBuffer();
      };
      await Promise.all([requests(sup.url, 60), requests(secondUrl, 60)]);
      await expect
        .poll(() => metric('workyard_requests_total{function="oops",method="GET",status_class="2xx"}'), { timeout: 10_000 })
        .toBe(120);
      expect(await metric('workyard_request_duration_seconds_count{function="oops"}')).toBeGreaterThanOrEqual(120);
    } finally {
      await second.stop();
    }
  });
});

/** Request records sent to the collector as the gateway sends them, dated `agoMs` before now. */
async function seed(fn: string, requests: { agoMs: number; status: number; ms: number }[]): Promise<void> {
  const now = Date.now();
  const records = requests.map((r, i) => ({
    worker: "gateway",
    ts: now - r.agoMs,
    outcome: "ok",
    logs: [],
    exceptions: [],
    access: [
      {
        id: `seeded-${fn}-${now}-${i}`,
        fn,
        method: "GET",
        path: `/${fn}`,
        status: r.status,
        ms: r.ms,
        ip: "127.0.0.1",
        inflight: 1,
        proc: "seed",
      },
    ],
  }));
  const res = await fetch(`${sup.collector.url}/ingest`, {
    method: "POST",
    headers: { authorization: `Bearer ${sup.collector.token}` },
    body: JSON.stringify(records),
  });
  expect(res.status).toBe(202);
}

describe("the dashboard", () => {
  let chrome: Chromium | undefined;
  let browser: BrowserContext;
  let page: Page;
  const MINUTE = 60_000;
  /** When the oldest seeded request of `tick` was made. */
  let firstSeeded = 0;

  beforeAll(async () => {
    chrome = await launchChromium({ width: 1400, height: 1200 });
    browser = chrome.browser;
    page = await browser.newPage();
  });

  afterAll(async () => {
    await chrome?.close();
  });

  /** The function's row as header → cell text, so a value is read under the header it stands under. */
  async function row(fn: string): Promise<Record<string, string>> {
    const headers = await page.locator("#functions thead th").allTextContents();
    const cells = await page.locator(`#functions tr[data-function="${fn}"] td`).allTextContents();
    expect(cells.length).toBe(headers.length);
    return Object.fromEntries(headers.map((h, i) => [h, cells[i] ?? ""]));
  }

  /** The time axis of a plot, ms since the epoch, as uPlot scaled it. */
  async function axis(id: string): Promise<{ from: number; to: number }> {
    const el = page.locator(`#${id}`);
    return { from: 1000 * Number(await el.getAttribute("data-from")), to: 1000 * Number(await el.getAttribute("data-to")) };
  }

  it("shows live figures, errors, crons and health in headless Chromium", async () => {
    // Without the token: nothing.
    expect((await page.goto(`${sup.internalUrl}/dashboard`))?.status()).toBe(401);
    await page.goto(`${sup.internalUrl}/dashboard?token=${encodeURIComponent(sup.internalToken)}`);
    expect(page.url()).toBe(`${sup.internalUrl}/dashboard`); // the token went into a cookie, out of the address bar
    const hello = page.locator('#functions tr[data-function="hello"]');
    // The default window starts at the first request, so it holds every request made so far.
    await expect.poll(() => hello.locator(".requests").textContent(), { timeout: 15_000 }).toMatch(/^3\d\d$/);
    const before = Number(await hello.locator(".requests").textContent());
    await load("/hello", 50);
    // Live: the page refreshes by itself and shows the new requests.
    await expect
      .poll(async () => Number(await hello.locator(".requests").textContent()), { timeout: 20_000 })
      .toBeGreaterThanOrEqual(before + 50);
    expect(Number(await hello.locator(".rate").textContent())).toBeGreaterThan(0);
    expect(await page.locator('#functions tr[data-function="oops"] .error-rate').textContent()).not.toBe("0.0 %");
    expect(await page.locator("#chart-rate canvas, #chart-errors canvas, #chart-latency canvas").count()).toBe(3);
    await expect.poll(() => page.locator("#errors").textContent()).toContain("oops: could not handle");
    expect(await page.locator("#errors").textContent()).toContain("functions/oops/index.ts:11:9");
    expect(await page.locator('#health tr[data-check="database"]').textContent()).toContain("ok");
    expect(await page.locator('#health tr[data-check="redis"]').textContent()).toContain("ok");
    expect(await page.locator("#crons").textContent()).toContain("*/5 * * * *");
    expect(await page.locator("#problem").textContent()).toBe("");
    const refused = await internal("/dashboard/data?window=2h");
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toBe(
      "window must be auto (from the first request), 5m, 15m or 60m",
    );
  });

  it("counts every column of the table over the window its title names", async () => {
    // tick has had no requests through the gateway in this file (only scheduled runs): 5 twelve minutes ago,
    // 4 three minutes ago (a 404 and a 500 among them), 3 half a minute ago.
    firstSeeded = Date.now() - 12 * MINUTE;
    await seed("tick", [
      ...Array.from({ length: 5 }, () => ({ agoMs: 12 * MINUTE, status: 200, ms: 10 })),
      { agoMs: 3 * MINUTE, status: 200, ms: 20 },
      { agoMs: 3 * MINUTE, status: 200, ms: 30 },
      { agoMs: 3 * MINUTE, status: 404, ms: 40 },
      { agoMs: 3 * MINUTE, status: 500, ms: 50 },
      ...Array.from({ length: 3 }, () => ({ agoMs: 30_000, status: 201, ms: 5 })),
    ]);
    await page.selectOption("#window", "5m");
    await expect.poll(() => page.locator("section:has(#functions) h2").textContent()).toContain("last 5 minutes");
    await expect.poll(async () => (await row("tick")).requests, { timeout: 10_000 }).toBe("7");
    expect(await page.locator("#functions thead th").allTextContents()).toEqual([
      "function",
      "requests",
      "req/s",
      "4xx",
      "5xx",
      "5xx rate",
      "p50",
      "p95",
      "p99",
      "max",
    ]);
    const last5 = await row("tick");
    expect(last5).toMatchObject({ function: "tick", requests: "7", "4xx": "1", "5xx": "1", "5xx rate": "14.3 %", max: "50 ms" });
    expect(Number(last5["req/s"])).toBeCloseTo(7 / 300, 2);
    const [p50, p95, p99, max] = [last5.p50, last5.p95, last5.p99, last5.max].map((v) => Number.parseFloat(v ?? ""));
    expect(p50).toBeLessThanOrEqual(p95 ?? 0);
    expect(p95).toBeLessThanOrEqual(p99 ?? 0);
    expect(p99).toBeLessThanOrEqual(max ?? 0);
    await page.selectOption("#window", "15m");
    await expect.poll(async () => (await row("tick")).requests, { timeout: 10_000 }).toBe("12");
    expect(await row("tick")).toMatchObject({ "4xx": "1", "5xx": "1", "5xx rate": "8.3 %", max: "50 ms" });
  });

  it("keeps the window chosen through refreshes and reloads, and spans the time axis over it", async () => {
    const asked = page.waitForRequest((r) => r.url().endsWith("/dashboard/data?window=60m"));
    await page.selectOption("#window", "60m");
    await asked;
    await expect
      .poll(
        async () => {
          const a = await axis("chart-rate");
          return a.to - a.from;
        },
        { timeout: 10_000 },
      )
      .toBeGreaterThanOrEqual(60 * MINUTE);
    const hour = await axis("chart-rate");
    expect(hour.to - hour.from).toBeLessThan(60 * MINUTE + 30_000);
    expect(Math.abs(hour.to - Date.now())).toBeLessThan(15_000);
    // The next refresh asks for the same window, and the page still shows it.
    await page.waitForRequest((r) => r.url().endsWith("/dashboard/data?window=60m"), { timeout: 10_000 });
    await page.waitForTimeout(500);
    expect(await page.locator("#window").inputValue()).toBe("60m");
    const again = await axis("chart-latency");
    expect(again.to - again.from).toBeGreaterThanOrEqual(60 * MINUTE);
    // A reload keeps it too: it is in the address.
    expect(new URL(page.url()).hash).toBe("#window=60m");
    const reloaded = page.waitForRequest((r) => r.url().includes("/dashboard/data?"));
    await page.reload();
    expect(new URL((await reloaded).url()).searchParams.get("window")).toBe("60m");
    expect(await page.locator("#window").inputValue()).toBe("60m");
    // From the first request: the axis starts at the oldest seeded request, not an hour back.
    await page.selectOption("#window", "auto");
    await expect.poll(() => page.locator("section:has(#functions) h2").textContent(), { timeout: 10_000 }).toMatch(/since .* \(12 min\)/);
    const fitted = await axis("chart-errors");
    expect(fitted.from).toBeLessThanOrEqual(firstSeeded);
    expect(firstSeeded - fitted.from).toBeLessThan(30_000);
    expect(Math.abs(fitted.to - Date.now())).toBeLessThan(15_000);
    expect(await row("tick")).toMatchObject({ requests: "12" });
  });

  it("fits each plot to its card, in width and height, when the window is resized", async () => {
    for (const [width, height] of [
      [1400, 1200],
      [900, 1000],
      [1900, 1100],
    ] as const) {
      await page.setViewportSize({ width, height });
      for (const id of ["chart-rate", "chart-errors", "chart-latency"]) {
        // How far the plot (its canvas, then its legend) falls short of the card's content box, on each side.
        const shortfall = async () => {
          const [card, box, canvas, legend] = await Promise.all(
            [`section.chart:has(#${id})`, `#${id}`, `#${id} .u-wrap`, `#${id} .u-legend`].map((s) => page.locator(s).boundingBox()),
          );
          if (!card || !box || !canvas || !legend) return Infinity;
          const inset = {
            left: box.x - card.x,
            right: card.x + card.width - (box.x + box.width),
            bottom: card.y + card.height - (box.y + box.height),
          };
          return Math.max(
            // The plot's box is the card less its padding: the same on both sides, and small.
            Math.abs(inset.left - inset.right),
            Math.max(inset.left, inset.bottom) > 20 ? Infinity : 0,
            Math.abs(canvas.x - box.x),
            Math.abs(box.x + box.width - (canvas.x + canvas.width)),
            Math.abs(box.y + box.height - (legend.y + legend.height)),
          );
        };
        await expect.poll(shortfall, { timeout: 5_000, message: `${id} at ${width}×${height}` }).toBeLessThanOrEqual(2);
        expect((await page.locator(`#${id} .u-wrap`).boundingBox())?.height).toBeGreaterThan(180);
      }
    }
    await page.setViewportSize({ width: 1400, height: 1200 });
    await page.selectOption("#window", "auto");
    await page.waitForTimeout(1000);
    const dir = join(repo.work, "screenshots");
    await mkdir(dir, { recursive: true });
    await page.screenshot({ path: join(dir, "dashboard.png"), fullPage: true });
    console.log(`[dashboard] screenshot: ${join(dir, "dashboard.png")}`);
  });

  it("says there is no data yet before the first request", async () => {
    // A collector of its own that has seen nothing, its dashboard read directly with its token.
    const dir = await mkdtemp(join(tmpdir(), "workyard-empty-collector-"));
    const empty = await startCollector({
      releaseDir: sup.release.releaseDir,
      manifest: sup.release.manifest,
      root: project.paths.root,
      databaseUrl: sup.backends.database.url,
      logTarget: "off",
      logFile: join(dir, "requests.log"),
      log: () => {},
    });
    const fresh = await browser.newPage();
    try {
      await fresh.setExtraHTTPHeaders({ authorization: `Bearer ${empty.token}` });
      await fresh.goto(`${empty.url}/dashboard`);
      await expect.poll(() => fresh.locator("#chart-rate .empty").textContent(), { timeout: 10_000 }).toContain("No requests yet");
      expect(await fresh.locator("#chart-latency .empty").textContent()).toContain("No requests yet");
      expect(await fresh.locator("section:has(#functions) h2").textContent()).toContain("no requests yet");
      expect(await fresh.locator('#functions tr[data-function="hello"] .requests').textContent()).toBe("0");
      expect(await fresh.locator('#functions tr[data-function="hello"] .p95').textContent()).toBe("–");
      expect(await fresh.locator("#chart-rate canvas").count()).toBe(0);
      expect(await fresh.locator("#problem").textContent()).toBe("");
    } finally {
      await fresh.close();
      await empty.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
