/**
 * HTTPS served by workerd itself (`npm start` with TLS_CERT and TLS_KEY): a self-signed certificate made by
 * openssl for this test, Node's https client trusting only that certificate, the HTTP port answering redirects,
 * HSTS over TLS, and the key never written into any generated file.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, realpath, rm } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { testJwtSecret } from "../helpers/auth.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

const run = promisify(execFile);
let dir: string;
let project: TestProject;
let sup: Supervisor;
let ca: Buffer;

async function selfSigned(name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-keyout",
    key,
    "-out",
    cert,
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);
  return { cert, key };
}

interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function httpsCall(
  url: string,
  { method = "GET", body, ca: trust }: { method?: string; body?: string; ca?: Buffer } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: trust, headers: body ? { "content-type": "application/json" } : {} }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const databaseUrl = inject("databaseUrl");
const redisUrl = inject("redisUrl");
const env = (cert: string, key: string) => ({
  TLS_CERT: cert,
  TLS_KEY: key,
  HTTPS_PORT: "0",
  AUTH_JWT_SECRET: testJwtSecret(),
  WORKYARD_SCHEDULER: "off",
  ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "workyard-tls-"));
  const { cert, key } = await selfSigned("server");
  ca = await readFile(cert);
  project = await createTestProject();
  if (databaseUrl) await migrateUp(databaseUrl, project.paths.migrations);
  sup = await startSupervisor({ paths: project.paths, host: "127.0.0.1", port: 0, env: env(cert, key), log: () => {} });
});
afterAll(async () => {
  await sup?.stop();
  await project?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("HTTPS from workerd", () => {
  it("serves the functions over TLS with the given certificate, with HSTS", async () => {
    expect(sup.tls).toBe(true);
    expect(sup.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const hello = await httpsCall(`${sup.url}/hello`, { ca });
    expect(hello.status).toBe(200);
    expect(JSON.parse(hello.body)).toMatchObject({ message: "Hello from workyard" });
    expect(hello.headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    const signup = await httpsCall(`${sup.url}/auth/signup`, {
      method: "POST",
      ca,
      body: JSON.stringify({ email: `tls-${Date.now()}@example.com`, password: "correct horse battery" }),
    });
    expect(signup.status).toBe(201);
    expect(signup.headers["strict-transport-security"]).toBeTruthy();
  });

  it("is real TLS: a client that does not trust the certificate is refused", async () => {
    await expect(httpsCall(`${sup.url}/hello`)).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it("redirects plain HTTP to HTTPS: 301 for GET, 308 for POST, path and query kept", async () => {
    const httpsPort = new URL(sup.url).port;
    const get = await fetch(`${sup.httpUrl}/links/abc?x=1`, { redirect: "manual" });
    expect(get.status).toBe(301);
    expect(get.headers.get("location")).toBe(`https://127.0.0.1:${httpsPort}/links/abc?x=1`);
    const post = await fetch(`${sup.httpUrl}/auth/login`, { method: "POST", redirect: "manual", body: "{}" });
    expect(post.status).toBe(308);
    expect(post.headers.get("location")).toBe(`https://127.0.0.1:${httpsPort}/auth/login`);
    expect(get.headers.get("strict-transport-security")).toBeNull(); // HSTS is sent over TLS only
  });

  it("never writes the private key into a generated file: the config names the files, workerd reads them", async () => {
    const key = await readFile(join(dir, "server.key"), "utf8");
    const keyBody = key
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"))
      .join("");
    const runDir = join(project.paths.work, "run");
    const configs = (await readdir(runDir)).filter((f) => f.endsWith("-tls.capnp"));
    expect(configs).toHaveLength(1);
    const config = await readFile(join(runDir, configs[0] ?? ""), "utf8");
    expect(config).toMatch(/privateKey = embed "[./]+.*server\.key"/);
    expect(config).not.toContain("PRIVATE KEY");
    // The bundle cache may be a link to the run's shared one (tests/helpers/test-project.ts): read it too.
    const generated = [
      ...(await readdir(project.paths.work, { recursive: true, withFileTypes: true })),
      ...(await readdir(await realpath(project.paths.bundleCache), { recursive: true, withFileTypes: true })),
    ];
    for (const f of generated.filter((e) => e.isFile() && /\.(capnp|json|js)$/.test(e.name))) {
      const text = await readFile(join(f.parentPath, f.name), "utf8");
      expect(text.includes(keyBody.slice(0, 40)), f.name).toBe(false);
    }
  });

  it("refuses to start with a key that is not the certificate's, saying so", async () => {
    const other = await selfSigned("other");
    const err = await startSupervisor({
      paths: project.paths,
      host: "127.0.0.1",
      port: 0,
      env: env(join(dir, "server.crt"), other.key),
      log: () => {},
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/is not the private key of the certificate/);
    const missing = await startSupervisor({
      paths: project.paths,
      host: "127.0.0.1",
      port: 0,
      env: { ...env(join(dir, "server.crt"), other.key), TLS_KEY: "" },
      log: () => {},
    }).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/Set both TLS_CERT .* and TLS_KEY/);
  });
});
