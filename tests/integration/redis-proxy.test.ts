/**
 * The Redis HTTP proxy, driven by @upstash/redis itself (plus raw fetch for what the client hides),
 * against both backends: the machine's real Redis (REDIS_PROXY_TEST_URL, default redis://127.0.0.1:6379)
 * and the in-memory one. When the real Redis is not reachable its cases show as skipped, and
 * REDIS_PROXY_REQUIRE_REDIS=1 turns that into a failure.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackend, startRedisProxy } from "../../lib/node/redis/proxy/index.ts";
import type { RedisBackend, RedisProxy } from "../../lib/node/redis/proxy/index.ts";
import { eventually } from "../helpers/eventually.ts";
import { openSse, raw, redisAnswers } from "../helpers/redis-servers.ts";
import { needs } from "../helpers/needs.ts";
import { testKeys } from "../helpers/isolated.ts";
import { protocolCases } from "../helpers/redis-protocol-cases.ts";

const REAL_URL = process.env.REDIS_PROXY_TEST_URL ?? "redis://127.0.0.1:6379";
const real = new URL(REAL_URL);
const realUp = needs({
  suite: "redis proxy on a real Redis",
  service: `a Redis at ${REAL_URL}`,
  available: await redisAnswers(real.hostname, Number(real.port || 6379), 1000),
  fix: "apt-get install -y redis-server, or set REDIS_PROXY_TEST_URL",
});
const TOKEN = `test-token-${randomUUID()}`;
const MAX_BODY = 256 * 1024;
const MAX_BATCH = 50;

const cases = [
  { name: "memory", redisUrl: undefined, available: true },
  { name: "redis", redisUrl: REAL_URL, available: realUp },
];
describe.each(cases)("redis proxy on the $name backend", ({ name, redisUrl, available }) => {
  const test = available ? it : it.skip;
  let backend: RedisBackend;
  let proxy: RedisProxy;
  let redis: Redis;
  const keys = testKeys(`proxy-${name}`, (args) => backend.command(args));
  const { prefix, key: k } = keys;
  const auth = { authorization: `Bearer ${TOKEN}` };
  /** POST a body as @upstash/redis would (base64 responses), without the client's decoding. */
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    raw(`${proxy.url}${path}`, {
      method: "POST",
      headers: { ...auth, "upstash-encoding": "base64", ...headers },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    if (!available) return;
    backend = createBackend({ redisUrl });
    proxy = await startRedisProxy({ host: "127.0.0.1", port: 0, token: TOKEN, backend, maxBodyBytes: MAX_BODY, maxBatch: MAX_BATCH });
    redis = new Redis({ url: proxy.url, token: TOKEN, enableTelemetry: false });
  });

  afterAll(async () => {
    if (!available) return;
    await keys.cleanup();
    await proxy.stop();
    await backend.close();
  });

  test("the test-keys helper removes exactly the keys under its prefix", async () => {
    const other = testKeys(`proxy-${name}-other`, (args) => backend.command(args));
    for (let i = 0; i < 7; i++) await redis.set(k(`cleanup:${i}`), i);
    await redis.set(other.key("kept"), "x");
    const mine = testKeys(`proxy-${name}-mine`, (args) => backend.command(args));
    for (let i = 0; i < 3; i++) await redis.set(mine.key(`x${i}`), i);
    expect(await mine.cleanup()).toBe(3);
    expect(await redis.exists(mine.key("x0"), mine.key("x1"), mine.key("x2"))).toBe(0);
    expect(await redis.get(other.key("kept"))).toBe("x");
    expect(await redis.get(k("cleanup:6"))).toBe(6);
    expect(await other.cleanup()).toBe(1);
  });

  test("labels the backend", () => {
    expect(backend.label).toBe(name === "redis" ? `redis at ${REAL_URL}` : "in-memory (embedded default, not persistent)");
  });

  // What every Upstash-protocol server here answers alike (the Redis object's tests run the same cases).
  protocolCases(test, { k, prefix, redis: () => redis, post });

  test("bytes that are not UTF-8, in through a path-style POST body, out through base64", async () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41, 0xc3]);
    const put = await raw(`${proxy.url}/set/${encodeURIComponent(k("rawbin"))}`, { method: "POST", headers: auth, body: bytes });
    expect(put.json).toEqual({ result: "OK" });
    const got = await post("/", ["GET", k("rawbin")]);
    expect(Buffer.from((got.json as { result: string }).result, "base64")).toEqual(bytes);
    const len = await post("/", ["STRLEN", k("rawbin")]);
    expect(len.json).toEqual({ result: 6 });
  });

  test("pub/sub over SSE: subscribe, receive while publishing, unsubscribe when the client leaves", async () => {
    const channel = k("chan");
    const sub = await openSse(`${proxy.url}/subscribe/${encodeURIComponent(channel)}`, TOKEN);
    expect(sub.status).toBe(200);
    expect(sub.headers.get("content-type")).toMatch(/text\/event-stream/);
    expect(await sub.reader.next()).toBe(`subscribe,${channel},1`);
    expect(await redis.publish(channel, "hello 日本 😀")).toBe(1);
    expect(await sub.reader.next()).toBe(`message,${channel},hello 日本 😀`);
    await redis.publish(channel, { kind: "json", n: 1 });
    expect(await sub.reader.next()).toBe(`message,${channel},{"kind":"json","n":1}`);

    const psub = await openSse(`${proxy.url}/psubscribe/${encodeURIComponent(`${prefix}ch*`)}`, TOKEN);
    expect(await psub.reader.next()).toBe(`psubscribe,${prefix}ch*,1`);
    expect(await redis.publish(channel, "both")).toBe(2);
    expect(await sub.reader.next()).toBe(`message,${channel},both`);
    expect(await psub.reader.next()).toBe(`pmessage,${prefix}ch*,${channel},both`);

    sub.reader.close();
    psub.reader.close();
    expect(await eventually(async () => (await redis.publish(channel, "anyone?")) === 0)).toBe(true);
  });

  test("pub/sub through @upstash/redis's own subscribe()", async () => {
    const channel = k("client-chan");
    const subscriber = redis.subscribe<{ n: number }>([channel]);
    const got: unknown[] = [];
    subscriber.on("message", (m) => got.push(m.message));
    expect(await eventually(async () => (await redis.publish(channel, { n: 1 })) === 1)).toBe(true);
    expect(await eventually(async () => got.length > 0)).toBe(true);
    expect(got[0]).toEqual({ n: 1 });
    await subscriber.unsubscribe();
    expect(await eventually(async () => (await redis.publish(channel, { n: 2 })) === 0)).toBe(true);
  });

  test("401 for a missing or wrong token; the _token query parameter works", async () => {
    const body = JSON.stringify(["PING"]);
    const none = await raw(proxy.url, { method: "POST", body });
    expect(none.status).toBe(401);
    expect((none.json as { error: string }).error).toMatch(/Unauthorized/);
    const wrong = await raw(proxy.url, { method: "POST", body, headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ error: expect.stringMatching(/Unauthorized/) });
    const malformed = await raw(proxy.url, { method: "POST", body, headers: { authorization: `Basic ${TOKEN}` } });
    expect(malformed.status).toBe(401);
    const query = await raw(`${proxy.url}/?_token=${encodeURIComponent(TOKEN)}`, { method: "POST", body });
    expect(query.json).toEqual({ result: "PONG" });
    const badClient = new Redis({ url: proxy.url, token: "wrong", enableTelemetry: false });
    await expect(badClient.get(k("s"))).rejects.toThrow(/Unauthorized/);
  });

  test("405 for other methods, and GET on the batch routes", async () => {
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const res = await raw(proxy.url, { method, headers: auth, body: "[]" });
      expect(res.status).toBe(405);
      expect(res.json).toMatchObject({ error: expect.any(String) });
    }
    const get = await raw(`${proxy.url}/pipeline`, { headers: auth });
    expect(get.status).toBe(405);
    expect(get.json).toMatchObject({ error: expect.any(String) });
  });

  test("413 for a body or a batch over the limit, as JSON", async () => {
    const big = await post("/", ["SET", k("big"), "x".repeat(MAX_BODY + 10)]);
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ error: expect.stringMatching(/larger than the limit/) });
    const batch = await post(
      "/pipeline",
      Array.from({ length: MAX_BATCH + 1 }, () => ["PING"]),
    );
    expect(batch.status).toBe(413);
    expect(batch.json).toMatchObject({ error: expect.stringMatching(/limit of 50/) });
    // The proxy still answers afterwards.
    expect(await redis.get(k("big"))).toBeNull();
  });

  test("400 JSON for a body that is not JSON", async () => {
    const notJson = await raw(proxy.url, { method: "POST", headers: auth, body: "{nope" });
    expect(notJson.status).toBe(400);
    expect(notJson.json).toMatchObject({ error: expect.stringMatching(/not valid JSON/) });
  });

  test("the sync token is returned; without base64 strings are plain", async () => {
    await redis.set(k("enc"), "x");
    const enc = await post("/", ["GET", k("enc")]);
    expect(enc.headers.get("upstash-sync-token")).toBeTruthy();
    const plain = await raw(proxy.url, { method: "POST", headers: auth, body: JSON.stringify(["GET", k("enc")]) });
    expect(plain.json).toEqual({ result: "x" });
  });

  test("path-style commands: GET /set/<key>/<value>, GET /get/<key>", async () => {
    const key = encodeURIComponent(k("path/with slash"));
    const set = await raw(`${proxy.url}/set/${key}/${encodeURIComponent("värde 🚀")}`, { headers: auth });
    expect(set.json).toEqual({ result: "OK" });
    const get = await raw(`${proxy.url}/get/${key}`, { headers: auth });
    expect(get.json).toEqual({ result: "värde 🚀" });
    const b64 = await raw(`${proxy.url}/get/${key}`, { headers: { ...auth, "upstash-encoding": "base64" } });
    expect(b64.json).toEqual({ result: Buffer.from("värde 🚀").toString("base64") });
    const ex = await raw(`${proxy.url}/set/${encodeURIComponent(k("p-ex"))}/v/EX/100?_token=${TOKEN}`);
    expect(ex.json).toEqual({ result: "OK" });
    expect(await redis.ttl(k("p-ex"))).toBeGreaterThan(90);
    const pub = await raw(`${proxy.url}/publish/${encodeURIComponent(k("nobody"))}/hi`, { headers: auth });
    expect(pub.json).toEqual({ result: 0 });
  });
});
