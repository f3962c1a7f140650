/**
 * `npm run dev` end to end: real miniflare serving a throwaway copy of the project, compared with real
 * workerd (the supervisor behind `npm start`) on the same requests; then saves to the copy's files are
 * served after a reload (without restarting workerd), a syntax error or a throw at the top level keeps the last
 * good version and the save that fixes it says so, REDIS_PROXY_PORT is honoured, and a cron fires through the dev
 * endpoint. The save → served times are measured and printed, not asserted (this box is shared).
 * DEV_TEST_LOGS=1 prints the dev server's own log at the end.
 */
import { createHash } from "node:crypto";
import { cp, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runCustomBuild } from "../../lib/node/build/custom-build.ts";
import { startDevServer } from "../../lib/node/dev/server.ts";
import type { DevServer, ReloadRecord } from "../../lib/node/dev/server.ts";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { createTestProject } from "../helpers/test-project.ts";
import { freePort } from "../helpers/redis-servers.ts";
import type { TestProject } from "../helpers/test-project.ts";

const databaseUrl = inject("databaseUrl");
const redisUrl = inject("redisUrl");
/** The run's backends, as both servers get them. */
const backendEnv = { ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}), ...(redisUrl ? { REDIS_URL: redisUrl } : {}) };
const secret = `dev-s3cr3t-${crypto.randomUUID()}`;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
let project: TestProject;
let dev: DevServer;
let tempDirs: string[] = [];
const logs: string[] = [];
let redisProxyPort: number;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "workyard-dev-test-"));
  tempDirs.push(dir);
  return dir;
}

beforeAll(async () => {
  project = await createTestProject({ fixtures: ["tick", "secret"], frontEnd: true });
  // The helper links lib/ to the repository's; a private copy lets the tests save lib/sdk files.
  await rm(join(project.paths.root, "lib"));
  await cp(join(projectPaths().root, "lib"), join(project.paths.root, "lib"), { recursive: true });
  await writeFile(join(project.paths.root, ".dev.vars"), `# test secrets\nWORKYARD_TEST_SECRET="${secret}"\n`);
  if (databaseUrl) await migrateUp(databaseUrl, project.paths.migrations);
  redisProxyPort = await freePort();
  dev = await startDevServer({
    paths: project.paths,
    host: "127.0.0.1",
    port: 0,
    env: { ...backendEnv, REDIS_PROXY_PORT: String(redisProxyPort) },
    embeddedDbDir: await tempDir(),
    log: (line) => logs.push(line),
  });
});

afterAll(async () => {
  if (process.env.DEV_TEST_LOGS) console.log(logs.join("\n"));
  await dev?.stop();
  await project?.dispose();
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
  tempDirs = [];
});

async function call(base: string, path: string, init?: RequestInit) {
  const res = await fetch(`${base}${path}`, { redirect: "manual", ...init });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: compared as text
  }
  return { status: res.status, body, headers: res.headers };
}

/** The body with every request id replaced, so two servers' answers compare. */
function shape(body: unknown): unknown {
  return JSON.parse(JSON.stringify(body), (key, value: unknown) => (key === "requestId" && typeof value === "string" ? "<id>" : value));
}

describe("same answers as workerd", () => {
  let sup: Supervisor;
  beforeAll(async () => {
    sup = await startSupervisor({
      paths: project.paths,
      host: "127.0.0.1",
      port: 0,
      env: { WORKYARD_SCHEDULER: "off", WORKYARD_TEST_SECRET: secret, ...backendEnv },
      embeddedDbDir: await tempDir(),
      log: () => {},
    });
  });
  afterAll(async () => {
    await sup?.stop();
  });

  const json = (body: string) => ({ method: "POST", headers: { "content-type": "application/json" }, body });
  const requests: [string, string, RequestInit?][] = [
    ["index", "/"],
    ["a function", "/hello"],
    ["a path parameter and query", "/hello/greet/ada?shout=true"],
    ["a valid body", "/hello/echo", json('{"text":"hi"}')],
    ["bad JSON", "/hello/echo", json("{not json")],
    ["wrong types", "/hello/echo", json('{"text":42}')],
    ["an unknown function", "/nope/x"],
    ["an unknown path", "/hello/nope"],
    ["a wrong method", "/hello/greet/ada", { method: "DELETE" }],
    ["a plain fetch handler", "/tick"],
    ["a secret (from .dev.vars in dev, the environment in workerd)", "/secret"],
    ["the database and Redis", "/links/nosuchcode"],
    ["a route that needs a user, without a token (401)", "/links", json('{"url":"https://example.com"}')],
  ];
  it.each(requests)("%s", async (_what, path, init) => {
    const [fromWorkerd, fromDev] = await Promise.all([call(sup.url, path, init), call(dev.url, path, init)]);
    expect(fromDev.status).toBe(fromWorkerd.status);
    expect(shape(fromDev.body)).toEqual(shape(fromWorkerd.body));
    for (const header of ["content-type", "allow"]) expect(fromDev.headers.get(header)).toBe(fromWorkerd.headers.get(header));
    expect(fromDev.headers.get("x-request-id")).toBeTruthy();
  });

  it("runs the Redis proxy on REDIS_PROXY_PORT, as npm start does", async () => {
    expect(new URL(dev.redis.proxyUrl).port).toBe(String(redisProxyPort));
    // The proxy answers there (401: no token), and functions reach Redis through it (the links test above).
    expect((await fetch(`http://127.0.0.1:${redisProxyPort}/`, { method: "POST", body: '["PING"]' })).status).toBe(401);
  });

  it("refuses a REDIS_PROXY_PORT that is not a port, saying which setting", async () => {
    await expect(
      startDevServer({ paths: project.paths, host: "127.0.0.1", port: 0, env: { REDIS_PROXY_PORT: "redis" }, log: () => {} }),
    ).rejects.toThrow(/REDIS_PROXY_PORT must be a port number \(got "redis"\)/);
  });

  it("gets the secret's value right", async () => {
    expect((await call(dev.url, "/secret")).body).toEqual({ present: true, sha256: sha256(secret) });
  });
});

/**
 * Saves `file` whole, as editors that write a temporary file and rename it over do (the watcher ignores `~` files): a
 * plain writeFile empties the file first, and a rebuild that reads it then reports that version, not the one saved.
 */
async function saveWhole(file: string, content: string): Promise<void> {
  const path = join(project.paths.root, file);
  await writeFile(`${path}~`, content);
  await rename(`${path}~`, path);
}

/** Saves `file` in the project copy, then polls `path` until `done(body)`; returns the save → served time. */
async function saveAndWait(file: string, content: string, path: string, done: (body: unknown) => boolean): Promise<number> {
  const saved = performance.now();
  await writeFile(join(project.paths.root, file), content);
  for (;;) {
    const answer = await call(dev.url, path).catch(() => undefined); // refused while miniflare restarts
    if (answer && done(answer.body)) return Math.round(performance.now() - saved);
    if (performance.now() - saved > 15_000) throw new Error(`${path} did not change within 15 s of saving ${file}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const message = (body: unknown) => (body as { message?: string }).message;

/** The first reload after the first `before` reloads that matches (a save can also cause a no-op reload). */
async function reloadAfter(before: number, matches: (r: ReloadRecord) => boolean): Promise<ReloadRecord> {
  await expect.poll(() => dev.reloads.slice(before).some(matches), { timeout: 10_000 }).toBe(true);
  return dev.reloads.slice(before).find(matches) as ReloadRecord;
}

describe("reload on save", () => {
  const hello = "functions/hello/index.ts";
  let original: string;
  beforeAll(async () => {
    original = await readFile(join(project.paths.root, hello), "utf8");
  });

  it("serves an edit to a function after rebuilding only what contains it", async () => {
    const before = dev.reloads.length;
    const edited = original.replace("} from ${", "} (edited) from ${");
    expect(edited).not.toBe(original);
    const ms = await saveAndWait(hello, edited, "/hello", (b) => message(b) === "Hello (edited) from workyard");
    console.log(`[dev] save → served: ${ms} ms (${hello})`);
    const reload = await reloadAfter(before, (r) => r.workers.length > 0);
    // hello runs in the gateway's isolate (isolate = false): the gateway's bundle holds it too.
    expect(reload).toMatchObject({ workers: ["gateway", "fn-hello"], errors: [] });
    // A code change is handed to the running workerd (its Worker Loader): no restart.
    expect(reload.restartMs).toBeUndefined();
    expect(reload.loadMs).toBeGreaterThanOrEqual(0);
    await expect.poll(() => logs.some((l) => /^reloaded gateway, hello in \d+ ms \(build \d+ ms, load \d+ ms\)$/.test(l))).toBe(true);
  });

  it("keeps serving the last good version on a syntax error, and says where it is", async () => {
    const before = dev.reloads.length;
    const broken = original.replace(
      "(c) => c.json({ message: `${env(c).GREETING} from",
      "(c) => {{ => c.json({ message: `${env(c).GREETING} from",
    );
    expect(broken).not.toBe(original);
    const line = broken.split("\n").findIndex((l) => l.includes("{{ =>")) + 1;
    await saveWhole(hello, broken);
    const failed = await reloadAfter(before, (r) => r.errors.length > 0);
    expect(failed.workers).toEqual([]);
    expect(failed.errors.join("\n")).toMatch(new RegExp(`functions/hello/index\\.ts:${line}:\\d+: `));
    expect(logs.join("\n")).toMatch(/still serving the last good version/);
    expect(message((await call(dev.url, "/hello")).body)).toBe("Hello (edited) from workyard");

    const fixedAt = dev.reloads.length;
    const ms = await saveAndWait(hello, original, "/hello", (b) => message(b) === "Hello from workyard");
    console.log(`[dev] fixed → served: ${ms} ms`);
    expect((await reloadAfter(fixedAt, (r) => r.fixed.length > 0)).fixed).toEqual([hello]);
    await expect
      .poll(() => logs.find((l) => l.startsWith("fixed: ")))
      .toBe("fixed: functions/hello/index.ts builds again; serving the new gateway, hello from this save");
  });

  it("keeps serving the last good version when a new one throws at the top level", async () => {
    const before = dev.reloads.length;
    const throwing = `${original}\nthrow new Error("boom at the top level");\n`;
    try {
      await saveWhole(hello, throwing);
      // The gateway's and hello's new versions both throw; a save can be handled in more than one reload (one that
      // began just before it reads the file during its builds), so look at every reload since the save.
      const since = () => dev.reloads.slice(before);
      await expect
        .poll(() => logs.join("\n"), { timeout: 10_000 })
        .toMatch(/the new version of hello did not start: .*\n.*boom at the top level/);
      const failed = since().filter((r) => r.errors.length > 0);
      expect(failed.flatMap((r) => r.workers)).toEqual([]);
      expect(failed.flatMap((r) => r.errors)).toEqual(expect.arrayContaining([expect.stringMatching(/boom at the top level/)]));
      expect(message((await call(dev.url, "/hello")).body)).toBe("Hello from workyard");
      await writeFile(join(project.paths.root, hello), original.replace("} from ${", "} (again) from ${"));
      await expect.poll(async () => message((await call(dev.url, "/hello")).body), { timeout: 10_000 }).toBe("Hello (again) from workyard");
    } finally {
      // Put it back even when an assertion failed, so the tests after this one see the real file.
      await saveAndWait(hello, original, "/hello", (b) => message(b) === "Hello from workyard");
    }
  });

  it("says so when a saved module has no default export, as an editor's in-place write shows it for a moment", async () => {
    const before = dev.reloads.length;
    try {
      await saveWhole(hello, "");
      const errors = () => dev.reloads.slice(before).flatMap((r) => r.errors);
      await expect
        .poll(() => errors().join("\n"), { timeout: 10_000 })
        .toMatch(/^hello failed to build:\n {2}functions\/hello\/index\.ts: no default export: /m);
      // The reloads that failed served nothing (one from the test before may still be recorded after `before`).
      expect(
        dev.reloads
          .slice(before)
          .filter((r) => r.errors.length > 0)
          .flatMap((r) => r.workers),
      ).toEqual([]);
      expect(errors().join("\n")).not.toMatch(/internal error/); // workerd's answer to such a module, cause unsaid
      expect(message((await call(dev.url, "/hello")).body)).toBe("Hello from workyard");
    } finally {
      const at = dev.reloads.length;
      await saveWhole(hello, original);
      await reloadAfter(at, (r) => r.fixed.includes(hello));
    }
  });

  it("rebuilds every worker that uses a saved SDK file", async () => {
    const before = dev.reloads.length;
    const file = "lib/sdk/errors.ts";
    const source = await readFile(join(project.paths.root, file), "utf8");
    const edited = source.replace('404: "not_found"', '404: "not_found_edited"');
    expect(edited).not.toBe(source);
    const code = (b: unknown) => (b as { error?: { code?: string } }).error?.code;
    try {
      const ms = await saveAndWait(file, edited, "/nope", (b) => code(b) === "not_found_edited");
      expect(code((await call(dev.url, "/hello/nope")).body)).toBe("not_found_edited"); // inside a function too
      // Every worker that imports the file is rebuilt; on a busy machine the rebuilds can arrive in more than one
      // reload, so look at all of them since the save.
      const rebuilt = () => new Set(dev.reloads.slice(before).flatMap((r) => r.workers));
      await expect.poll(() => [...rebuilt()], { timeout: 15_000 }).toEqual(expect.arrayContaining(["gateway", "fn-hello", "fn-links"]));
      expect([...rebuilt()]).not.toContain("fn-tick"); // a plain fetch handler does not import the SDK
      console.log(`[dev] save → served: ${ms} ms (${file}: ${[...rebuilt()].join(", ")})`);
    } finally {
      // Put it back even when an assertion failed, so the tests after this one see the real file.
      await saveAndWait(file, source, "/nope", (b) => code(b) === "not_found");
    }
  });

  it("serves a front end's assets and page, and runs its [build] again on a save under its watch_dir", async () => {
    const page = async () => (await call(dev.url, "/app/", { headers: { accept: "text/html" } }).catch(() => undefined))?.body;
    // Addresses in the page are relative to its <base>, which the function sets to where it is served.
    const script = (html: unknown) => `/app/${/assets\/index-[\w-]+\.js/.exec(String(html))?.[0] ?? "assets/missing.js"}`;
    const first = await page();
    expect(String(first)).toContain('<base href="/app/" />');
    expect(String(first)).toContain('<form class="stack" action="session" method="post">');
    const before = await call(dev.url, script(first));
    expect({ status: before.status, type: before.headers.get("content-type") }).toEqual({
      status: 200,
      type: "text/javascript; charset=utf-8",
    });

    const file = "functions/app/src/App.tsx";
    const source = await readFile(join(project.paths.root, file), "utf8");
    const edited = source.replace(">\n          workyard links\n", ">\n          workyard links, edited\n");
    expect(edited).not.toBe(source);
    const saved = performance.now();
    const logged = logs.length;
    await saveWhole(file, edited);
    // The page (rendered by the function's new bundle) and the script (built again by Vite) both change.
    await expect.poll(async () => String(await page()), { timeout: 20_000 }).toContain("workyard links, edited");
    const after = await call(dev.url, script(await page()));
    expect(after.status).toBe(200);
    expect(String(after.body)).toContain("workyard links, edited");
    console.log(`[dev] save → served: ${Math.round(performance.now() - saved)} ms (${file}: vite build, bundle, restart)`);
    // Built again by this save (the start built it once already).
    await expect.poll(() => logs.slice(logged).some((l) => /^built functions\/app \(vite build\) in \d+ ms$/.test(l))).toBe(true);
  });

  it("reads a front end's files again when another command rebuilt them (npm run build beside npm run dev)", async () => {
    const before = dev.reloads.length;
    const logged = logs.length;
    const app = join(project.paths.functions, "app");
    // As npm run build would: the same [build] command, in the same folder, outside the dev server.
    await runCustomBuild("app", { command: "vite build", cwd: app, watchDirs: [] }, projectPaths().root);
    await expect
      .poll(() => logs.slice(logged).some((l) => l.startsWith("a front end's built files changed on disk")), { timeout: 10_000 })
      .toBe(true);
    // miniflare lists the folder's files anew: the page's script is served (a stale list would 404 a renamed file).
    await expect
      .poll(
        async () => {
          const html = String((await call(dev.url, "/app/", { headers: { accept: "text/html" } }).catch(() => undefined))?.body);
          const script = /assets\/index-[\w-]+\.js/.exec(html)?.[0];
          return script ? (await call(dev.url, `/app/${script}`).catch(() => undefined))?.status : undefined;
        },
        { timeout: 10_000 },
      )
      .toBe(200);
    const restarts = dev.reloads.slice(before).filter((r) => r.restartMs !== undefined).length;
    expect(restarts).toBeGreaterThanOrEqual(1);
    console.log(`[dev] a build by another command: ${restarts} restart(s)`);
  });

  it("picks up a new function folder and a changed .dev.vars", async () => {
    const before = dev.reloads.length;
    await cp(join(project.paths.root, "functions/tick"), join(project.paths.root, "functions/tock"), { recursive: true });
    await expect.poll(async () => (await call(dev.url, "/tock").catch(() => undefined))?.body, { timeout: 10_000 }).toEqual({ tick: true });
    // A new function is a settings change (a new worker, a new route): that one restarts workerd.
    expect((await reloadAfter(before, (r) => r.workers.includes("fn-tock"))).restartMs).toBeGreaterThanOrEqual(0);
    const changed = `${secret}-2`;
    await writeFile(join(project.paths.root, ".dev.vars"), `WORKYARD_TEST_SECRET=${changed}\n`);
    await expect
      .poll(async () => (await call(dev.url, "/secret").catch(() => undefined))?.body, { timeout: 10_000 })
      .toEqual({ present: true, sha256: sha256(changed) });
  });
});

describe("scheduled", () => {
  it("fires a function's scheduled() with its declared cron through the dev endpoint", async () => {
    const r = await call(dev.devUrl, "/__dev/scheduled/tick", { method: "POST" });
    expect(r).toMatchObject({ status: 200, body: { outcome: "ok", cron: "*/5 * * * *" } });
    await expect.poll(() => logs.some((l) => l.includes('tick: ran "*/5 * * * *"'))).toBe(true);
  });

  it("passes the cron it is given, and reports a handler that throws", async () => {
    const r = await call(dev.devUrl, `/__dev/scheduled/tick?cron=${encodeURIComponent("0 0 1 1 *")}`, { method: "POST" });
    expect(r).toMatchObject({ status: 200, body: { outcome: "exception", cron: "0 0 1 1 *" } });
  });

  it("answers JSON errors for unknown functions, missing crons and wrong methods", async () => {
    expect(await call(dev.devUrl, "/__dev/scheduled/nope", { method: "POST" })).toMatchObject({
      status: 404,
      body: { error: { code: "not_found" } },
    });
    expect(await call(dev.devUrl, "/__dev/scheduled/hello", { method: "POST" })).toMatchObject({
      status: 400,
      body: { error: { code: "bad_request" } },
    });
    expect(await call(dev.devUrl, "/__dev/scheduled/tick")).toMatchObject({ status: 405 });
    expect((await call(dev.devUrl, "/__dev")).body).toMatchObject({
      functions: expect.arrayContaining([{ name: "tick", crons: ["*/5 * * * *"], missingSecrets: [], served: true }]),
    });
  });

  it("is not reachable through the public port", async () => {
    expect(dev.devUrl).not.toBe(dev.url);
    expect(await call(dev.url, "/__dev/scheduled/tick", { method: "POST" })).toMatchObject({
      status: 404,
      body: { error: { code: "not_found" } },
    });
  });
});
