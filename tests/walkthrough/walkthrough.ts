/**
 * The newcomer's walk, scripted: a fresh `git clone` of this repository's last commit, then the README's commands in
 * the README's order, each answer checked: `npm ci` (which builds and creates the embedded database), `npm start`,
 * the README's curl examples (run as written, with the port changed), a token from /auth and a link, the README's
 * first function added and served after a restart, `npm run trigger`, `npm run internal`, `npm run crons`, a deploy
 * of an edit, a function added after the deploy (named at start, served with --sources), a rollback, and a stop
 * that says what it stopped and reports no crash.
 *
 * Not part of `npm test` (it installs from the registry, or npm's cache, into a fresh clone: minutes, not seconds):
 * `npm run test:walkthrough [-- --keep]`; `.ci/run` runs it after the tests. Everything it starts is on loopback, on
 * free ports, in its own folder, stopped at the end; each step has a deadline.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { cliArgs } from "../../lib/node/cli/args.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { freePort } from "../../lib/node/runtime/listen-socket.ts";

const { values } = cliArgs(
  { options: { keep: { type: "boolean", default: false } } },
  "usage: npm run test:walkthrough [-- --keep]\n" +
    "  Clones the last commit into a temporary folder and runs the README's commands in order, checking each answer.\n" +
    "  --keep   leave the folder (its path is printed) instead of removing it",
);

const repo = projectPaths().root;
const dir = await mkdtemp(join(tmpdir(), "workyard-walk-"));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
// What a newcomer's shell has: none of this run's or this repository's settings.
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(CI|DATABASE_URL|REDIS_URL|WORKYARD_.*|TEST_.*|npm_.*|INIT_CWD)$/.test(name)),
  ),
  // Without the PATH entries `npm run` added for this repository (its node_modules/.bin, its Node).
  PATH: (process.env.PATH ?? "")
    .split(":")
    .filter((p) => !p.startsWith(repo) && !p.includes("node_modules"))
    .join(":"),
  PORT: String(port),
  FORCE_COLOR: "0",
};
const walkStarted = performance.now();
let server: { child: ChildProcess; output: () => string; exited: Promise<unknown> } | undefined;

/** One step: its name, its time, and on failure what the step saw. */
async function step(name: string, run: () => Promise<void>): Promise<void> {
  const started = performance.now();
  try {
    await run();
  } catch (err) {
    console.log(`✗ ${name}`);
    if (server) console.log(`--- npm start's output ---\n${server.output()}\n---`);
    throw err;
  }
  console.log(`✓ ${name} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

/** `npm <args>` in the clone, as a user types it; its exit code and output, never a throw. */
const npm = (args: string[], timeout = 180_000) =>
  execa("npm", args, { cwd: dir, env, reject: false, timeout, all: true, extendEnv: false, stdin: "ignore" });

/** `npm start [-- args]` in its own process group (as in a terminal); resolves once it says it serves. */
async function start(args: string[] = []): Promise<string> {
  const child = spawn("npm", ["start", ...(args.length ? ["--", ...args] : [])], {
    cwd: dir,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  server = { child, output: () => output, exited };
  const deadline = Date.now() + 120_000;
  while (!output.includes("Ctrl-C stops.")) {
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode})`);
    if (Date.now() > deadline) throw new Error("npm start did not say it serves within 120 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return output;
}

/** Ctrl-C as a terminal sends it (to the whole foreground group); answers what the stop printed. */
async function stop(): Promise<string> {
  if (!server?.child.pid) return "";
  const { child } = server;
  const before = server.output().length;
  process.kill(-(child.pid ?? 0), "SIGINT");
  const timer = setTimeout(() => process.kill(-(child.pid ?? 0), "SIGKILL"), 30_000);
  await server.exited;
  clearTimeout(timer);
  const said = server.output().slice(before);
  server = undefined;
  return said;
}

/** A README `curl` line run as written (bash, curl), on this walk's port; answers status and body. */
async function curl(command: string): Promise<{ status: number; body: string }> {
  const line = command.replaceAll("localhost:8787", `127.0.0.1:${port}`).replace(/^curl /, "curl -s -w '\\n%{http_code}' ");
  const { stdout } = await execa("bash", ["-c", line], { reject: false, timeout: 15_000 });
  const at = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
}

/** The README's pattern for an answer: `…` stands for anything. */
const pattern = (text: string) =>
  new RegExp(
    `^${text
      .split("…")
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
    "s",
  );

const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

try {
  const readme = await readFile(join(repo, "README.md"), "utf8");

  await step("git clone (the last commit, as a new user gets it)", async () => {
    await execa("git", ["clone", "--quiet", repo, dir]);
  });

  await step("npm ci: installs, builds the release and creates the embedded database", async () => {
    const out = await npm(["ci", "--no-audit", "--no-fund", "--prefer-offline"], 600_000);
    assert.equal(out.exitCode, 0, out.all);
    assert.match(out.all, /workyard: building release [0-9a-f]{12}/);
    assert.match(out.all, /workyard: embedded database ready in/);
    assert.match(out.all, /workyard: built release [0-9a-f]{12}/);
  });

  await step("npm start: serves every function, says which backends", async () => {
    const banner = await start();
    assert.match(banner, new RegExp(`workyard is serving http://127\\.0\\.0\\.1:${port}  \\(ready in \\d+\\.\\d s\\)`));
    for (const fn of ["auth", "hello", "links"]) assert.ok(banner.includes(`${base}/${fn}`), `${fn} is listed`);
    assert.match(banner, /database: embedded PGlite/);
    assert.match(banner, /readiness: workerd ok \d+ ms, database ok \d+ ms, redis ok \d+ ms/);
    assert.doesNotMatch(banner, /warning:/);
  });

  await step("the README's curl examples answer what the README says", async () => {
    const tryIt = /## What you see at the first start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    const examples = [...tryIt.matchAll(/^(curl .*?)\s+# (.*)$/gm)].filter(([, cmd]) => !/[$<]/.test(cmd ?? ""));
    assert.ok(examples.length >= 3, `found ${examples.length} runnable examples`);
    for (const [, cmd = "", said = ""] of examples) {
      const { status, body } = await curl(cmd);
      const [, expectedStatus, shape = said] = /^(\d{3}) (.*)$/.exec(said) ?? [];
      assert.equal(status, expectedStatus ? Number(expectedStatus) : 200, `${cmd}: status`);
      assert.match(body, pattern(shape), `${cmd}: body`);
    }
  });

  let token = "";
  await step("a token from /auth (docs/auth.md), a link created with it, and its redirect", async () => {
    const signup = await json(await post("/auth/signup", { email: "ada@example.com", password: "correct horse battery" }));
    assert.equal(signup.status, 201, JSON.stringify(signup.body));
    token = String(signup.body.accessToken);
    const created = await json(await post("/links", { url: "https://example.com", code: "demo" }, { authorization: `Bearer ${token}` }));
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const redirect = await fetch(`${base}/links/demo`, { redirect: "manual" });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get("location"), "https://example.com");
  });

  await step("the README's first function: added, served after a restart, the stop says what it stopped", async () => {
    for (const [, body = ""] of readme.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
      const named = /^(?:\/\/|#) (functions\/[a-z0-9-]+\/[\w.]+)\n/.exec(body);
      if (!named?.[1]) continue;
      await mkdir(dirname(join(dir, named[1])), { recursive: true });
      await writeFile(join(dir, named[1]), body.slice(named[0].length));
    }
    const said = await stop();
    assert.match(said, /stopped workerd/);
    assert.match(said, /stopped the embedded database/);
    assert.match(said, /stopped in \d+\.\d s/);
    assert.doesNotMatch(said, /unexpectedly/);
    const banner = await start();
    assert.ok(banner.includes(`${base}/greet`));
    assert.deepEqual(await json(await post("/greet", { name: "Ada" })), { status: 200, body: { message: "Hello, Ada" } });
    assert.equal((await post("/greet", { name: "" })).status, 400);
  });

  await step("npm run trigger: lists a function's two crons, --all fires both", async () => {
    const ask = await npm(["run", "trigger", "--", "links"]);
    assert.equal(ask.exitCode, 2, ask.all);
    assert.match(ask.all, /"links" has 2 crons/);
    const all = await npm(["run", "trigger", "--", "links", "--all"]);
    assert.equal(all.exitCode, 0, all.all);
    assert.equal([...all.all.matchAll(/^links ".*": ok in \d+ ms$/gm)].length, 2, all.all);
  });

  await step("npm run internal and npm run crons: metrics, readiness, the crons with their runs", async () => {
    assert.equal((await fetch(`${base}/hello`)).status, 200);
    const metrics = await npm(["run", "internal", "--", "/metrics"]);
    assert.equal(metrics.exitCode, 0, metrics.all);
    assert.match(metrics.all, /^workyard_requests_total\{.*function="hello"/m);
    const ready = await npm(["run", "--silent", "internal", "--", "/readyz"]);
    assert.equal((JSON.parse(ready.stdout) as { ok: boolean }).ok, true);
    const crons = await npm(["run", "crons"]);
    assert.equal(crons.exitCode, 0, `npm run crons: ${crons.exitCode} ${crons.all}`);
    assert.match(crons.all, /links {2}"\* \* \* \* \*".*\n {2}next: \d{4}-/);
    assert.match(crons.all, /manual\s+ok/);
  });

  const hello = join(dir, "functions/hello/index.ts");
  const original = await readFile(hello, "utf8");
  await step("npm run deploy: an edit is live with no restart", async () => {
    assert.ok(original.includes("} from ${"));
    await writeFile(hello, original.replace("} from ${", "} (deployed) from ${"));
    const out = await npm(["run", "deploy"]);
    assert.equal(out.exitCode, 0, out.all);
    assert.match(out.all, /deployed: release [0-9a-f]{12} is live/);
    assert.match(String((await json(await fetch(`${base}/hello`))).body.message), /^Hello \(deployed\) from workyard$/);
  });

  await step("after a deploy, a new function is named at start as not served, and --sources serves it", async () => {
    await mkdir(join(dir, "functions/later"));
    await writeFile(join(dir, "functions/later/index.ts"), 'export default { fetch: () => new Response("later") };\n');
    await stop();
    const banner = await start();
    assert.match(banner, /serving the deployed release [0-9a-f]{12} .*NOT the sources/);
    assert.match(banner, /in the sources but not served until deployed: later/);
    assert.match(banner, /npm start -- --sources/);
    assert.equal((await fetch(`${base}/later`)).status, 404);
    await stop();
    await start(["--sources"]);
    assert.equal(await (await fetch(`${base}/later`)).text(), "later");
    await stop();
    await start();
  });

  await step("npm run rollback: the release before the deploy is live again", async () => {
    const out = await npm(["run", "rollback"]);
    assert.equal(out.exitCode, 0, out.all);
    assert.equal((await json(await fetch(`${base}/hello`))).body.message, "Hello from workyard");
  });

  await step("Ctrl-C: stops everything, says so, exits 0", async () => {
    const child = server?.child;
    const said = await stop();
    assert.doesNotMatch(said, /unexpectedly|restarting/);
    assert.match(said, /stopped in/);
    // npm itself, told SIGINT too, ends by that signal once its script (which exits 0) is done, as a shell expects.
    assert.ok(child?.exitCode === 0 || child?.signalCode === "SIGINT", `npm start ended ${child?.exitCode ?? child?.signalCode}`);
    assert.equal((await fetch(`${base}/hello`).catch(() => undefined))?.status, undefined, "nothing answers after the stop");
  });
  console.log(`walk-through passed in ${((performance.now() - walkStarted) / 1000).toFixed(0)} s`);
} catch (err) {
  process.exitCode = 1;
  console.error(err instanceof Error ? err.message : err);
} finally {
  await stop().catch(() => undefined);
  if (values.keep) console.log(`kept: ${dir}`);
  else await rm(dir, { recursive: true, force: true });
}
