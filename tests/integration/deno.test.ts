/**
 * Functions on Deno (`npm run deno -- <name>`, issue #21): hello, auth and links served by Deno from their own sources
 * against a database of the test's own, each as its own process on a free port. Checked: the routes answer as on
 * workerd (request ids, JSON errors, OpenAPI), an account made on auth signs link creation on links, a redirect's
 * click is counted through waitUntil, a new link's event is stored by the queue service npm run deno started, and
 * SIGTERM stops the process (Deno, then what the command started) within seconds, and a cron fires on its own
 * schedule through Deno.cron.
 */
import { symlink } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { bearer, randomIp } from "../helpers/auth.ts";
import { eventually } from "../helpers/eventually.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";
import type { TestProject } from "../helpers/test-project.ts";
import { runScript } from "../helpers/run-script.ts";
import { startServing } from "../helpers/serving.ts";
import { createTestProject } from "../helpers/test-project.ts";

interface OnDeno {
  name: string;
  url: string;
  child: ChildProcess;
  output: () => string;
}

const SECRET = "deno-test-secret-0123456789abcdef0123456789abcdef";

/** `npm run deno -- <name> --port 0`, resolved once Deno says where it listens. */
async function serveOnDeno(name: string, env: Record<string, string>): Promise<OnDeno> {
  const serving = await startServing(`${name} on Deno`, process.execPath, ["scripts/deno.ts", name, "--port", "0"], {
    env: { ...process.env, ...env },
    ready: /on Deno [\d.]+: (http:\/\/127\.0\.0\.1:\d+)\//,
    timeoutMs: 60_000,
  });
  return { name, ...serving };
}

/** SIGTERM, and how long the process took to exit (or null when it did not within 15 s). */
async function stop(fn: OnDeno): Promise<{ code: number | null; ms: number | null }> {
  if (fn.child.exitCode !== null) return { code: fn.child.exitCode, ms: 0 };
  const started = Date.now();
  const exited = new Promise<number | null>((resolve) => fn.child.once("exit", (code) => resolve(code)));
  fn.child.kill("SIGTERM");
  const code = await Promise.race([exited, new Promise<"late">((r) => setTimeout(() => r("late"), 15_000))]);
  if (code === "late") {
    fn.child.kill("SIGKILL");
    return { code: null, ms: null };
  }
  return { code, ms: Date.now() - started };
}

let database: FreshDatabase;
const running: OnDeno[] = [];
let hello: OnDeno;
let auth: OnDeno;
let links: OnDeno;

/**
 * A function with a cron every minute (fixture cron-probe), started first: Deno.cron fires it on the next whole
 * minute, at most a minute later, while the other tests run; the last test checks what it posted.
 */
const cronCalls: { body: { cron?: string; scheduledTime?: number }; at: number }[] = [];
const cronCallback = createServer((req, res) => {
  let text = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (text += chunk));
  req.on("end", () => {
    cronCalls.push({ body: JSON.parse(text) as { cron?: string; scheduledTime?: number }, at: Date.now() });
    res.end();
  });
});
let cronProject: TestProject;
let cronProbe: OnDeno;

/** A project with only the given fixtures, served on Deno from the repository's packages. */
async function fixtureProject(fixture: string): Promise<TestProject> {
  const project = await createTestProject({ realFunctions: false, fixtures: [fixture] });
  await symlink(join(process.cwd(), "node_modules"), join(project.paths.root, "node_modules"));
  return project;
}

const inProject = (project: TestProject) => ({
  WORKYARD_ROOT: project.paths.root,
  WORKYARD_DENO: join(process.cwd(), "node_modules/.bin/deno"),
});

beforeAll(async () => {
  await new Promise<void>((r) => cronCallback.listen(0, "127.0.0.1", r));
  cronProject = await fixtureProject("cron-probe");
  database = await freshDatabase();
  await migrateUp(database.url, join(process.cwd(), "migrations"));
  const env = { DATABASE_URL: database.url, AUTH_JWT_SECRET: SECRET, REDIS_URL: "" };
  const callback = `http://127.0.0.1:${(cronCallback.address() as AddressInfo).port}/fired`;
  [cronProbe, hello, auth, links] = await Promise.all([
    serveOnDeno("cron-probe", { ...inProject(cronProject), CALLBACK_URL: callback }),
    serveOnDeno("hello", env),
    serveOnDeno("auth", env),
    serveOnDeno("links", env),
  ]);
  running.push(cronProbe, hello, auth, links);
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((fn) => stop(fn)));
  cronCallback.close();
  await cronProject?.dispose();
  await database?.dispose();
});

describe("functions on Deno (npm run deno)", () => {
  it("serves hello's routes with the platform's request ids, errors and OpenAPI document", async () => {
    const root = await fetch(`${hello.url}/`);
    expect(root.status).toBe(200);
    const body = (await root.json()) as { requestId: string };
    expect(root.headers.get("x-request-id")).toBe(body.requestId);
    const echo = await fetch(`${hello.url}/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "from Deno" }),
    });
    expect(await echo.json()).toEqual({ echo: "from Deno" });
    const bad = await fetch(`${hello.url}/echo`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBeTypeOf("string");
    const doc = (await (await fetch(`${hello.url}/openapi.json`)).json()) as { openapi: string };
    expect(doc.openapi).toBe("3.1.0");
  });

  it("signs up on auth, creates a link on links with that token, counts a redirect's click and stores the link's event", async () => {
    const ip = randomIp();
    const signup = await fetch(`${auth.url}/signup`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": ip },
      body: JSON.stringify({ email: `deno-${crypto.randomUUID().slice(0, 8)}@example.com`, password: "correct horse battery" }),
    });
    expect(signup.status, await signup.clone().text()).toBe(201);
    const { accessToken } = (await signup.json()) as { accessToken: string };

    const code = `deno-${crypto.randomUUID().slice(0, 8)}`;
    const created = await fetch(`${links.url}/`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-forwarded-for": ip, ...bearer(accessToken) },
      body: JSON.stringify({ url: "https://example.com/deno", code }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await fetch(`${links.url}/`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(
      401,
    );

    const redirect = await fetch(`${links.url}/${code}`, { redirect: "manual" });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("https://example.com/deno");
    // The click is counted after the answer, through ctx.waitUntil.
    const clicks = async () => ((await (await fetch(`${links.url}/${code}/stats`)).json()) as { clicks: number }).clicks;
    expect(await eventually(async () => (await clicks()) === 1)).toBe(true);

    // links sends "link.created" to its queue: the queue service npm run deno started stored it.
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ body: Buffer }[]>`select body from workyard.queue_messages where queue = 'link-events'`;
      expect(rows.map((r) => JSON.parse(r.body.toString()) as unknown)).toContainEqual(
        expect.objectContaining({ type: "link.created", code, url: "https://example.com/deno" }),
      );
    } finally {
      await sql.end();
    }
  });

  it("says why under plain `deno serve`, which passes connection info where the bindings belong", async () => {
    const { url, output } = await startServing(
      "deno serve",
      join(process.cwd(), "node_modules/.bin/deno"),
      [
        "serve",
        "--no-prompt",
        "--no-lock",
        "--allow-all",
        "--node-modules-dir=manual",
        "--import-map=.workyard/deno/import-map.json",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "functions/hello/index.ts",
      ],
      { ready: /Listening on (http:\/\/127\.0\.0\.1:\d+)\//, timeoutMs: 60_000 },
      // Stopped with the others, also if it never listens.
      (child, out) => running.push({ name: "deno serve", url: "", child, output: out }),
    );
    const r = await fetch(`${url}/`);
    expect(r.status).toBe(500);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("misconfigured");
    expect(await eventually(async () => output().includes("its second argument is connection info (`deno serve`)"))).toBe(true);
    expect(output()).toContain("npm run deno -- <name>");
  }, 60_000);

  it("keys rate limits on the connection's client, whatever CF-Connecting-IP a client sends with a body", async () => {
    // auth allows 20 sign-ups an hour per client: the 21st from one client is refused, though each claims another address.
    const ip = randomIp();
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) {
      const r = await fetch(`${auth.url}/signup`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": ip, "cf-connecting-ip": `203.0.113.${i + 1}` },
        body: "{}",
      });
      statuses.push(r.status);
      await r.body?.cancel();
    }
    expect(statuses.slice(0, 20).every((s) => s === 400)).toBe(true);
    expect(statuses[20]).toBe(429);
  });

  it("on SIGTERM, finishes the waitUntil work of a request already answered before it exits", async () => {
    const project = await fixtureProject("wait-until-probe");
    const calls: number[] = [];
    const callback = createServer((req, res) => {
      calls.push(Date.now());
      req.resume();
      res.end();
    });
    await new Promise<void>((r) => callback.listen(0, "127.0.0.1", r));
    try {
      const probe = await serveOnDeno("wait-until-probe", {
        ...inProject(project),
        CALLBACK_URL: `http://127.0.0.1:${(callback.address() as AddressInfo).port}/done`,
      });
      running.push(probe);
      expect(await (await fetch(`${probe.url}/`)).json()).toEqual({ answered: true });
      const signalled = Date.now();
      const stopped = await stop(probe);
      expect(stopped.code, probe.output()).toBe(0);
      // The work ran 1.5 s after the answer, while the process was stopping, and before it exited.
      expect(calls).toHaveLength(1);
      expect((calls[0] ?? 0) - signalled).toBeGreaterThan(1000);
      expect(stopped.ms).toBeGreaterThanOrEqual((calls[0] ?? 0) - signalled);
    } finally {
      callback.close();
      await project.dispose();
    }
  }, 60_000);

  it("names an unknown function and says --help", async () => {
    const unknown = await runScript("deno.ts", ["no-such-function"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No function named "no-such-function"');
    expect(unknown.stderr).toContain("links");
    const help = await runScript("deno.ts", ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("usage: npm run deno -- <function>");
  });

  it("stops on SIGTERM within seconds, Deno and what the command started", async () => {
    const extra = await serveOnDeno("links", { DATABASE_URL: database.url, AUTH_JWT_SECRET: SECRET, REDIS_URL: "" });
    running.push(extra);
    expect((await fetch(`${extra.url}/openapi.json`)).status).toBe(200);
    const stopped = await stop(extra);
    expect(stopped.code, extra.output()).toBe(0);
    expect(stopped.ms).toBeLessThan(10_000);
    await expect(fetch(`${extra.url}/openapi.json`)).rejects.toThrow();
  }, 60_000);

  // Last: the cron probe started before the first test and fires on the next whole minute.
  it("fires a cron on its own schedule through Deno.cron, with the whole minute it was due as scheduledTime", async () => {
    await eventually(async () => cronCalls.length > 0, 70_000, 200);
    expect(cronCalls.length, cronProbe.output()).toBeGreaterThan(0);
    const [first] = cronCalls;
    expect(first?.body.cron).toBe("* * * * *");
    const due = first?.body.scheduledTime ?? 0;
    expect(due % 60_000).toBe(0);
    expect((first?.at ?? 0) - due).toBeGreaterThanOrEqual(0);
    expect((first?.at ?? 0) - due).toBeLessThan(10_000);
    // Once per minute: not twice for the same minute.
    expect(new Set(cronCalls.map((c) => c.body.scheduledTime)).size).toBe(cronCalls.length);
  }, 80_000);
});
