/**
 * The Redis object (lib/workers/redis/object.ts) in real workerd: a test worker (tests/fixtures/redis-object/worker.ts)
 * answers the object's RPC answers as the proxy's HTTP answers, so that @upstash/redis in Node and raw requests
 * drive it as they drive the proxy, and runs @upstash/redis inside workerd through `redisFromEnv` as functions do.
 *   - main: the machine's Redis (REDIS_PROXY_TEST_URL, default redis://127.0.0.1:6379), this file's own key prefix
 *   - db: the same Redis, database 13, this file's own keys only
 *   - private: a private redis-server (killed connections, timeouts: a slow script there stalls nobody else),
 *     a 200 ms command timeout; acl and wrongPassword: the same server as an ACL user, with its password and without
 *   - down: a port nothing listens on
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "@upstash/redis";
import { Redis as IoRedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundlePlatformWorker } from "../../lib/node/build/bundle.ts";
import type { MergedConfig } from "../../lib/node/build/wrangler-config.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { Embed, serializeConfig, VOID } from "../../lib/node/build/workerd-config.ts";
import type { Service, Socket } from "../../lib/node/build/workerd-config.ts";
import { workerdPackageBinary } from "../../lib/node/ops/toolchain/versions.ts";
import { createBackend, startRedisProxy } from "../../lib/node/redis/proxy/index.ts";
import type { RedisBackend, RedisProxy } from "../../lib/node/redis/proxy/index.ts";
import {
  REDIS_OBJECT_BINDING,
  REDIS_OBJECT_CLASS,
  REDIS_OBJECT_SWITCH,
  REDIS_OBJECT_TIMEOUT_VAR,
  REDIS_OBJECT_URL_VAR,
} from "../../lib/shared/redis-object.ts";
import { runSteps } from "../fixtures/redis-object/steps.ts";
import type { Step } from "../fixtures/redis-object/steps.ts";
import { testKeys } from "../helpers/isolated.ts";
import { needs } from "../helpers/needs.ts";
import { protocolCases } from "../helpers/redis-protocol-cases.ts";
import { freePort, haveRedisServer, PrivateRedis, raw, redisAnswers } from "../helpers/redis-servers.ts";

const REAL_URL = process.env.REDIS_PROXY_TEST_URL ?? "redis://127.0.0.1:6379";
const real = new URL(REAL_URL);
const DB = 13;
const realUp = needs({
  suite: "the Redis object on a real Redis",
  service: `a Redis at ${REAL_URL} and /usr/bin/redis-server`,
  available: (await redisAnswers(real.hostname, Number(real.port || 6379), 1000)) && haveRedisServer(),
  fix: "apt-get install -y redis-server, or set REDIS_PROXY_TEST_URL",
});
const TOKEN = "unused-by-the-object";
const TIMEOUT_MS = 200;
const ACL_USER = "workyard-object";
const ACL_PASSWORD = "p@ss:w/rd";
const fixture = new URL("../fixtures/redis-object/worker.ts", import.meta.url).pathname;

/** workerd serving the test worker once per Redis setting, each on its own port. */
async function serveObjects(settings: Record<string, { url: string; timeoutMs?: number }>) {
  const dir = await mkdtemp(join(tmpdir(), "workyard-redis-object-"));
  // Bundled as the platform's own workers are (the object is the internal worker's).
  const config: MergedConfig = {
    name: "redis-object-test",
    main: fixture,
    compatibility_date: "2026-11-23",
    compatibility_flags: [],
    minify: true,
    keep_names: false,
    upload_source_maps: false,
    vars: {},
  };
  const file = await bundlePlatformWorker("redis-object-test", config, dir, projectPaths().root);
  const urls: Record<string, string> = {};
  const services: Service[] = [{ name: "outbound", network: { allow: ["public", "local"] } }];
  const sockets: Socket[] = [];
  for (const [name, { url, timeoutMs }] of Object.entries(settings)) {
    const port = await freePort();
    urls[name] = `http://127.0.0.1:${port}`;
    services.push({
      name,
      worker: {
        modules: [{ name: file, esModule: new Embed(file) }],
        compatibilityDate: "2026-11-23",
        bindings: [
          { name: REDIS_OBJECT_BINDING, durableObjectNamespace: { className: REDIS_OBJECT_CLASS } },
          { name: REDIS_OBJECT_SWITCH, text: "on" },
          { name: REDIS_OBJECT_URL_VAR, text: url },
          ...(timeoutMs === undefined ? [] : [{ name: REDIS_OBJECT_TIMEOUT_VAR, text: String(timeoutMs) }]),
          // Nothing listens there: a command that went over HTTP instead of to the object would fail.
          { name: "UPSTASH_REDIS_REST_URL", text: "http://127.0.0.1:9" },
          { name: "UPSTASH_REDIS_REST_TOKEN", text: TOKEN },
        ],
        durableObjectNamespaces: [{ className: REDIS_OBJECT_CLASS, uniqueKey: `redis-object-test-${name}`, preventEviction: true }],
        durableObjectStorage: { inMemory: VOID },
        globalOutbound: { name: "outbound" },
      },
    });
    sockets.push({ name, address: `127.0.0.1:${port}`, http: {}, service: { name } });
  }
  await writeFile(join(dir, "config.capnp"), serializeConfig({ services, sockets }));
  const output: string[] = [];
  const child = spawn(workerdPackageBinary(), ["serve", join(dir, "config.capnp")], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.on("data", (d: Buffer) => output.push(d.toString()));
  child.stderr.on("data", (d: Buffer) => output.push(d.toString()));
  const deadline = Date.now() + 15_000;
  for (const url of Object.values(urls)) {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`workerd exited: ${output.join("")}`);
      if (Date.now() > deadline) throw new Error(`workerd did not answer: ${output.join("")}`);
      const up = await fetch(`${url}/nothing`).then(
        () => true,
        () => false,
      );
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    urls,
    output,
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

type Served = Awaited<ReturnType<typeof serveObjects>>;

const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  raw(`${base}${path}`, { method: "POST", headers: { "upstash-encoding": "base64", ...headers }, body: JSON.stringify(body) });

describe.runIf(realUp)("the Redis object in workerd", () => {
  let served: Served;
  let privateRedis: PrivateRedis;
  let admin: IoRedis;
  let adminDb: IoRedis;
  let privateAdmin: IoRedis;
  let backend: RedisBackend;
  let proxy: RedisProxy;
  let redis: Redis;
  const keys = testKeys("redis-object", (args) => admin.call(args[0] ?? "", ...args.slice(1)));
  const dbKeys = testKeys("redis-object-db", (args) => adminDb.call(args[0] ?? "", ...args.slice(1)));
  const { key: k, prefix } = keys;
  const url = (name: string) => served.urls[name] ?? "";

  beforeAll(async () => {
    privateRedis = await PrivateRedis.onFreePort();
    admin = new IoRedis(REAL_URL);
    adminDb = new IoRedis(REAL_URL, { db: DB });
    privateAdmin = new IoRedis(privateRedis.url);
    const nobody = await freePort();
    served = await serveObjects({
      main: { url: REAL_URL },
      db: { url: `${REAL_URL.replace(/\/\d*$/, "")}/${DB}` },
      private: { url: privateRedis.url, timeoutMs: TIMEOUT_MS },
      acl: { url: `redis://${ACL_USER}:${encodeURIComponent(ACL_PASSWORD)}@127.0.0.1:${privateRedis.port}` },
      wrongPassword: { url: `redis://${ACL_USER}:wrong@127.0.0.1:${privateRedis.port}` },
      down: { url: `redis://127.0.0.1:${nobody}` },
      extraPassword: { url: `redis://:not-needed@127.0.0.1:${privateRedis.port}` },
      crowded: { url: `redis://127.0.0.1:${privateRedis.port}` }, // database 0, no password: CLIENT SETNAME alone sets it up
    });
    backend = createBackend({ redisUrl: REAL_URL });
    proxy = await startRedisProxy({ host: "127.0.0.1", port: 0, token: TOKEN, backend });
    redis = new Redis({ url: url("main"), token: TOKEN, enableTelemetry: false });
  });

  afterAll(async () => {
    await keys.cleanup().catch(() => 0);
    await dbKeys.cleanup().catch(() => 0);
    await served?.stop();
    await proxy?.stop();
    await backend?.close();
    admin?.disconnect();
    adminDb?.disconnect();
    privateAdmin?.disconnect();
    await privateRedis?.kill();
  });

  protocolCases(it, { k, prefix, redis: () => redis, post: (path, body, headers) => post(url("main"), path, body, headers) });

  it("@upstash/redis inside workerd, through the object, returns and throws what it does through the proxy", async () => {
    const steps = (p: string): Step[] => [
      { op: "command", args: ["SET", `${p}s`, "héllo"] },
      { op: "command", args: ["GET", `${p}s`] },
      { op: "command", args: ["SET", `${p}j`, '{"a":[1,2]}'] },
      { op: "command", args: ["GET", `${p}j`] },
      { op: "command", args: ["HSET", `${p}h`, "a", "1", "b", "two"] },
      { op: "command", args: ["HGETALL", `${p}h`] },
      { op: "command", args: ["INCR", `${p}s`] },
      { op: "command", args: ["BLPOP", `${p}l`, "0"] },
      { op: "command", args: ["NOSUCHCOMMAND", `${p}s`] },
      {
        op: "pipeline",
        commands: [
          ["SET", `${p}p`, "1"],
          ["INCR", `${p}s`],
          ["GET", `${p}p`],
        ],
      },
      {
        op: "multi",
        commands: [
          ["INCR", `${p}p`],
          ["GET", `${p}p`],
          ["INCR", `${p}s`],
        ],
      },
    ];
    const viaProxy = k("sdk-proxy:");
    const viaObject = k("sdk-object:");
    const expected = await runSteps(new Redis({ url: proxy.url, token: TOKEN, enableTelemetry: false, retry: false }), steps(viaProxy));
    const res = await raw(`${url("main")}/sdk`, { method: "POST", body: JSON.stringify(steps(viaObject)) });
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.json)).toBe(JSON.stringify(expected).replaceAll(viaProxy, viaObject));
    expect(expected).toContainEqual({ result: "héllo" });
    expect(expected).toContainEqual({ thrown: expect.stringMatching(/^UpstashError: ERR BLPOP would block/) });
  });

  it("pipelines and transactions answer what the proxy answers, byte for byte", async () => {
    // Each server gets its own keys, the same commands; the answers hold no key names.
    const batches = (p: string) => ({
      pipeline: [
        [
          ["SET", `${p}a`, "text"],
          ["INCR", `${p}a`],
          ["GET", `${p}a`],
          ["HSET", `${p}h`, "f", "v", "g", "ü"],
          ["HGETALL", `${p}h`],
          ["ZADD", `${p}z`, "1", "日本", "2.5", "😀"],
          ["ZRANGE", `${p}z`, "0", "-1", "WITHSCORES"],
          ["BLPOP", `${p}l`, "0"],
          ["GET", `${p}missing`],
          ["EVAL", "return {1, 'two', redis.pcall('INCR', KEYS[1]), {3}}", "1", `${p}a`],
          ["SET", `${p}ok`, "OK"],
          ["GET", `${p}ok`],
        ],
        [["PING"]],
        [["MONITOR"]],
      ],
      multiExec: [
        [
          ["SET", `${p}m`, "text"],
          ["INCR", `${p}m`],
          ["GET", `${p}m`],
          ["MGET", `${p}m`, `${p}none`],
        ],
        [
          ["SET", `${p}m2`, "never"],
          ["NOSUCHCOMMAND", "x"],
        ],
        [["SET", `${p}m2`, "never"], ["GET"]],
        [
          ["SET", `${p}m2`, "never"],
          ["SUBSCRIBE", `${p}c`],
        ],
      ],
      single: [["GET", `${p}a`], ["NOSUCHCOMMAND"], ["SELECT", "1"], ["HGETALL", `${p}h`], ["GET"], []],
    });
    const viaProxy = batches(k("cmp-proxy:"));
    const viaObject = batches(k("cmp-object:"));
    const auth = { authorization: `Bearer ${TOKEN}` };
    const answers = async (base: string, b: ReturnType<typeof batches>, headers: Record<string, string>) => {
      const out: unknown[] = [];
      for (const body of b.pipeline) out.push(await post(base, "/pipeline", body, headers));
      for (const body of b.multiExec) out.push(await post(base, "/multi-exec", body, headers));
      for (const body of b.single) out.push(await post(base, "/", body, headers));
      return out.map((r) => {
        const { status, json } = r as { status: number; json: unknown };
        // The proxy adds a request id to its error answers; the client reads only `error`.
        return {
          status,
          json: json && typeof json === "object" && "requestId" in json ? { error: (json as unknown as { error: string }).error } : json,
        };
      });
    };
    const fromProxy = await answers(proxy.url, viaProxy, auth);
    const fromObject = await answers(url("main"), viaObject, {});
    expect(fromObject).toEqual(fromProxy);
    expect(fromObject.map((a) => (a as { status: number }).status)).toEqual([
      200, 200, 200, 200, 400, 400, 400, 200, 400, 400, 200, 400, 400,
    ]);
  });

  it("a URL with a database number selects it", async () => {
    const key = dbKeys.key("in-db");
    expect((await post(url("db"), "/", ["SET", key, "x"])).json).toEqual({ result: "OK" });
    expect(await adminDb.get(key)).toBe("x");
    expect(await admin.exists(key)).toBe(0);
  });

  it("logs in as the URL's user with its password (percent-encoded), and says so when Redis refuses it", async () => {
    await privateAdmin.call("ACL", "SETUSER", ACL_USER, "on", `>${ACL_PASSWORD}`, "~acl:*", "+@all");
    expect((await post(url("acl"), "/", ["SET", "acl:k", "v"])).json).toEqual({ result: "OK" });
    expect(String(await privateAdmin.call("CLIENT", "LIST"))).toMatch(new RegExp(`name=workyard-redis-object .*user=${ACL_USER} `));
    const refused = await post(url("wrongPassword"), "/", ["GET", "acl:k"]);
    expect(refused.status).toBe(503);
    expect((refused.json as { error: string }).error).toMatch(/Redis refused the connection's set-up: WRONGPASS/);
    expect((refused.json as { error: string }).error).not.toContain("wrong@");
  });

  it("an object by another name than the process's one never connects", async () => {
    const named = async () => (String(await admin.call("CLIENT", "LIST")).match(/name=workyard-redis-object /g) ?? []).length;
    const before = await named();
    for (const name of ["a", "b", "c"]) {
      const res = await raw(`${url("main")}/other-object?name=${name}`);
      expect(res.status).toBe(503);
      expect((res.json as { error: string }).error).toMatch(/this is not the Redis object/);
    }
    expect(await named()).toBe(before);
  });

  it("refuses a call over the proxy's body limit with its 413, and takes one just under it", async () => {
    const big = await post(url("main"), "/", ["SET", k("big"), "x".repeat(4 * 1024 * 1024)]);
    expect(big.status).toBe(413);
    expect((big.json as { error: string }).error).toMatch(/larger than the limit of 4194304 bytes/);
    const batch = await post(url("main"), "/pipeline", [
      ["SET", k("b1"), "x".repeat(3 * 1024 * 1024)],
      ["SET", k("b2"), "y".repeat(2 * 1024 * 1024)],
    ]);
    expect(batch.status).toBe(413);
    expect((await post(url("main"), "/", ["SET", k("fits"), "x".repeat(3 * 1024 * 1024)])).json).toEqual({ result: "OK" });
  });

  it("goes on when the URL has a password and Redis has none, as the proxy's client does", async () => {
    expect((await post(url("extraPassword"), "/", ["PING"], { "upstash-encoding": "none" })).json).toEqual({ result: "PONG" });
  });

  it("a server that takes the connection and then refuses it (max clients) is retried with backoff, not per command", async () => {
    const stats = async () => Number(/rejected_connections:(\d+)/.exec(String(await privateAdmin.call("INFO", "stats")))?.[1] ?? 0);
    const clients = ((await privateAdmin.call("CONFIG", "GET", "maxclients")) as string[])[1] ?? "10000";
    const connected = Number(/connected_clients:(\d+)/.exec(String(await privateAdmin.call("INFO", "clients")))?.[1] ?? 0);
    await privateAdmin.call("CONFIG", "SET", "maxclients", String(connected));
    try {
      const before = await stats();
      for (let i = 0; i < 20; i++) expect((await post(url("crowded"), "/", ["PING"])).status).toBe(503);
      // 20 commands in well under a second: the first attempt, and at most a retry or two after 100 and 200 ms.
      expect((await stats()) - before).toBeLessThanOrEqual(3);
    } finally {
      await privateAdmin.call("CONFIG", "SET", "maxclients", clients);
    }
  });

  it("answers 503 while Redis cannot be reached, at once and without the proxy", async () => {
    const started = Date.now();
    const res = await post(url("down"), "/", ["GET", k("x")]);
    expect(res.status).toBe(503);
    expect((res.json as { error: string }).error).toMatch(/^ERR Redis \(redis at redis:\/\/127\.0\.0\.1:\d+\) is not reachable: /);
    const batch = await post(url("down"), "/pipeline", [["GET", k("x")]]);
    expect(batch.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("a connection killed with CLIENT KILL is replaced: the next commands get their own replies", async () => {
    const base = url("private");
    await post(base, "/", ["SET", "killed:k", "v"]);
    const id = ((await post(base, "/", ["CLIENT", "ID"])).json as { result: number }).result;
    expect(id).toBeGreaterThan(0);
    expect(await privateAdmin.call("CLIENT", "KILL", "ID", String(id))).toBe(1);
    // The first command after the kill may still meet the dead socket (503); none gets another command's reply.
    const statuses: number[] = [];
    let got: unknown;
    for (let i = 0; i < 50 && got === undefined; i++) {
      const res = await post(base, "/", ["GET", "killed:k"]);
      statuses.push(res.status);
      if (res.status === 200) got = res.json;
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(got).toEqual({ result: Buffer.from("v").toString("base64") });
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    const newId = ((await post(base, "/", ["CLIENT", "ID"])).json as { result: number }).result;
    expect(newId).not.toBe(id);
    const list = String(await privateAdmin.call("CLIENT", "LIST"));
    expect(list).toMatch(new RegExp(`id=${newId} .*name=workyard-redis-object`));
  });

  it("a command past its timeout fails, with everything pending behind it, and no reply goes to the wrong command", async () => {
    const base = url("private");
    await post(base, "/pipeline", [
      ["SET", "slow:a", "a"],
      ["SET", "slow:b", "b"],
    ]);
    // A script that keeps Redis busy for 600 ms (the timeout is 200 ms), then answers "slow-result".
    const slow = `local t0 = redis.call('TIME') local start = t0[1] * 1000000 + t0[2]
      while true do local t = redis.call('TIME') if t[1] * 1000000 + t[2] - start > 600000 then break end end
      return 'slow-result'`;
    const [evalRes, behind] = await Promise.all([
      post(base, "/", ["EVAL", slow, "0"]),
      (async () => {
        await new Promise((r) => setTimeout(r, 20));
        return post(base, "/", ["GET", "slow:a"]);
      })(),
    ]);
    expect(evalRes.status).toBe(503);
    expect((evalRes.json as { error: string }).error).toMatch(/no reply within 200 ms/);
    expect(behind.status).toBe(503);
    // Once Redis is free again, each command gets its own reply: never the script's late "slow-result".
    const seen: unknown[] = [];
    await expect
      .poll(
        async () => {
          const res = await post(base, "/pipeline", [["GET", "slow:a"], ["GET", "slow:b"], ["PING"]]);
          seen.push(res.json);
          return res.status;
        },
        { timeout: 5000, interval: 100 },
      )
      .toBe(200);
    expect(seen.at(-1)).toEqual([{ result: "YQ==" }, { result: "Yg==" }, { result: "UE9ORw==" }]);
    expect(JSON.stringify(seen)).not.toContain(Buffer.from("slow-result").toString("base64"));
  });

  it("many concurrent commands on the one connection each get their own reply", async () => {
    const n = 200;
    const pipe = redis.pipeline();
    for (let i = 0; i < n; i++) pipe.set(k(`conc:${i}`), `v${i}`);
    await pipe.exec();
    const got = await Promise.all(Array.from({ length: n }, (_, i) => post(url("main"), "/", ["GET", k(`conc:${i}`)])));
    got.forEach((res, i) => expect(res.json).toEqual({ result: Buffer.from(`v${i}`).toString("base64") }));
  });
});
