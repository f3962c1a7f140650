/**
 * `npm run apikey` and `npm run user` while `npm start` serves the embedded database (PGlite, which one process
 * holds): the commands, run as the operator runs them, connect to the server that process runs for it, so a key
 * works at once, a revoked key is refused at the very next request, and a role shows without a restart. Once the
 * supervisor stops, the commands open the database themselves again. Always on PGlite, whatever the run's backends.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { UserError } from "../../lib/node/common/user-error.ts";
import { servedAt, withProjectDatabase } from "../../lib/node/data/embedded-postgres.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { bearer, randomIp, signUp, testJwtSecret } from "../helpers/auth.ts";
import type { Session } from "../helpers/auth.ts";
import { runScript } from "../helpers/run-script.ts";
import { expectError, fetchAnswer } from "../helpers/stack.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

let project: TestProject;
let sup: Supervisor | undefined;
let url: string;

beforeAll(async () => {
  project = await createTestProject();
  const redisUrl = inject("redisUrl");
  sup = await startSupervisor({
    paths: project.paths,
    host: "127.0.0.1",
    port: 0,
    // No DATABASE_URL: the embedded database, in the project's .workyard/pglite, as a fresh clone's npm start.
    env: { AUTH_JWT_SECRET: testJwtSecret(), ...(redisUrl ? { REDIS_URL: redisUrl } : {}) },
    log: () => {},
  });
  url = sup.url;
});
afterAll(async () => {
  await sup?.stop();
  await project?.dispose();
});

/** The command as `npm run <script>` runs it in this project, with no DATABASE_URL. */
const cli = (script: "apikey.ts" | "user.ts", args: string[]) =>
  runScript(script, args, { WORKYARD_ROOT: project.paths.root, DATABASE_URL: "" });

const call = (path: string, init?: RequestInit) => fetchAnswer(`${url}${path}`, init);
const post = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", "x-forwarded-for": randomIp(), ...headers },
  body: JSON.stringify(body),
});

describe("while npm start serves the embedded database", () => {
  it("a key made by npm run apikey works at once, and once revoked the very next request is refused", async () => {
    expect(sup?.backends.database.kind).toBe("embedded-pglite");
    const made = await cli("apikey.ts", ["create", "links", "--name", "made while serving"]);
    expect(made.code, made.stderr).toBe(0);
    const key = /(wyk_[a-z0-9]{12}_[\w-]{43})/.exec(made.stdout)?.[1] ?? "";
    const id = key.slice(4, 16);
    expect(key).not.toBe("");

    const created = await call(
      "/links",
      post({ url: "https://example.com/served", code: `s${Date.now().toString(36)}` }, { "x-api-key": key }),
    );
    expect(created.status, created.text).toBe(201);
    expect((await cli("apikey.ts", ["list"])).stdout).toMatch(new RegExp(`${id}\\s+links\\s+user\\s+active`));

    const revoked = await cli("apikey.ts", ["revoke", id]);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked ${id}\n` });
    expectError(await call("/links", post({ url: "https://example.com/after" }, { "x-api-key": key })), 401, "invalid_token");
  });

  it("an operator's mistake is a message, not a stack", async () => {
    const unknown = await cli("apikey.ts", ["revoke", "nosuchkey000"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('No active API key with id "nosuchkey000" (see npm run apikey -- list)\n');
    const nobody = await cli("user.ts", ["role", "nobody@example.com", "admin"]);
    expect(nobody).toMatchObject({ code: 1, stderr: 'No account with the email "nobody@example.com"\n' });
  });

  it("npm run user makes an admin: /me says so at once, and tokens issued after it carry the role", async () => {
    const owner = await signUp(url);
    const other = await signUp(url);
    const code = `r${Date.now().toString(36)}`;
    expect((await call("/links", post({ url: "https://example.com/r", code }, bearer(owner.accessToken)))).status).toBe(201);
    expectError(await call(`/links/${code}`, { method: "DELETE", headers: bearer(other.accessToken) }), 403, "forbidden");

    const given = await cli("user.ts", ["role", other.email, "admin"]);
    expect(given).toMatchObject({ code: 0, stdout: `${other.email} is now admin\n` });
    expect((await call("/auth/me", { headers: bearer(other.accessToken) })).body).toMatchObject({ role: "admin" });
    const refreshed = (await call("/auth/refresh", post({ refreshToken: other.refreshToken }))).body as unknown as Session;
    expect(refreshed.user.role).toBe("admin");
    expect((await call(`/links/${code}`, { method: "DELETE", headers: bearer(refreshed.accessToken) })).status).toBe(204);
  });
});

describe("when npm start is not running", () => {
  it("the commands open the embedded database themselves, and see what was done while it ran", async () => {
    await sup?.stop();
    sup = undefined;
    const listed = await cli("apikey.ts", ["list"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/\s+links\s+user\s+revoked \d{4}-.*made while serving/);
  });

  it("a process that has the database open but does not serve it yet, or not where it says, is a message", async () => {
    const dir = await mkdtemp(join(tmpdir(), "workyard-pglite-lock-"));
    const lock = join(dir, "workyard.lock");
    try {
      await writeFile(lock, `${process.pid}\n`);
      const starting = servedAt(dir);
      await expect(starting).rejects.toBeInstanceOf(UserError);
      await expect(starting).rejects.toThrow(`is being opened by process ${process.pid} (npm start?) and is not served yet`);

      // A port nothing listens on any more: as after npm start died and its pid went to another process.
      const closed = await new Promise<number>((resolve) => {
        const server = createServer().listen(0, "127.0.0.1", () => {
          const { port } = server.address() as AddressInfo;
          server.close(() => resolve(port));
        });
      });
      await writeFile(lock, `${process.pid}\npostgres://postgres@127.0.0.1:${closed}/postgres\n`);
      const gone = withProjectDatabase({}, dir, (sql) => sql`select 1`);
      await expect(gone).rejects.toBeInstanceOf(UserError);
      await expect(gone).rejects.toThrow(`if process ${process.pid} is not workyard's, delete ${lock}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
