/**
 * Redis going away under the proxy: 503 JSON with Retry-After (never a crash), and recovery without a
 * restart once Redis is back. Uses a redis-server of its own on a free port, killed and restarted here;
 * the machine's shared Redis is never touched.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackend, startRedisProxy } from "../../lib/node/redis/proxy/index.ts";
import type { RedisBackend, RedisProxy } from "../../lib/node/redis/proxy/index.ts";
import { eventually } from "../helpers/eventually.ts";
import { PrivateRedis, REDIS_SERVER_BINARY, freePort, haveRedisServer, openSse, raw } from "../helpers/redis-servers.ts";
import { needs } from "../helpers/needs.ts";

const canStopRedis = needs({
  suite: "redis proxy when Redis goes down and comes back",
  service: `${REDIS_SERVER_BINARY} (a private one is started and killed)`,
  available: haveRedisServer(),
  fix: "apt-get install -y redis-server",
});

describe.runIf(canStopRedis)("redis proxy when Redis goes down and comes back", () => {
  const token = `outage-${randomUUID()}`;
  const logs: string[] = [];
  let server: PrivateRedis;
  let backend: RedisBackend;
  let proxy: RedisProxy;
  let redis: Redis;
  const post = (path: string, body: unknown) =>
    raw(`${proxy.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });

  beforeAll(async () => {
    server = new PrivateRedis(await freePort());
    await server.start();
    backend = createBackend({ redisUrl: server.url, log: (line) => logs.push(line) });
    proxy = await startRedisProxy({ token, backend });
    redis = new Redis({ url: proxy.url, token, enableTelemetry: false, retry: false });
  });

  afterAll(async () => {
    await proxy?.stop();
    await backend?.close();
    await server?.kill();
  });

  it("answers 503 JSON with Retry-After while Redis is down, ends open streams, and recovers by itself", async () => {
    expect(backend.label).toBe(`redis at ${server.url}`);
    expect(await redis.set("k", "before")).toBe("OK");
    const tx = redis.multi();
    tx.incr("n");
    expect(await tx.exec()).toEqual([1]);
    const stream = await openSse(`${proxy.url}/subscribe/news`, token);
    expect(await stream.reader.next()).toBe("subscribe,news,1");

    await server.kill();

    // The open stream ends: its messages would be lost, and the client must know.
    await expect(stream.reader.next()).rejects.toThrow(/ended/);

    expect(await eventually(async () => (await post("/", ["GET", "k"])).status === 503)).toBe(true);
    const single = await post("/", ["GET", "k"]);
    expect(single.status).toBe(503);
    expect(single.headers.get("retry-after")).toBe("1");
    expect(single.headers.get("content-type")).toMatch(/application\/json/);
    expect(single.json).toMatchObject({ error: expect.stringMatching(/not reachable/) });
    for (const path of ["/pipeline", "/multi-exec"]) {
      const batch = await post(path, [
        ["SET", "k", "during"],
        ["GET", "k"],
      ]);
      expect(batch.status, path).toBe(503);
      expect(batch.json).toMatchObject({ error: expect.any(String) });
    }
    const sse = await raw(`${proxy.url}/subscribe/news`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
      body: "[]",
    });
    expect(sse.status).toBe(503);
    expect(sse.json).toMatchObject({ error: expect.any(String) });
    await expect(redis.get("k")).rejects.toThrow(/not reachable/);
    // The outage is logged (reconnect attempts fail with ECONNREFUSED), once per distinct message.
    expect(await eventually(async () => logs.some((l) => /ECONNREFUSED/.test(l)))).toBe(true);

    await server.start();

    // Recovery without touching the proxy: ioredis reconnects (backoff at most 2 s).
    expect(await eventually(async () => (await post("/", ["PING"])).status === 200, 10_000)).toBe(true);
    expect(await redis.set("k", "after")).toBe("OK");
    expect(await redis.get("k")).toBe("after");
    const again = redis.multi();
    again.incr("n");
    again.get("k");
    expect(await again.exec()).toEqual([1, "after"]);
    const p = redis.pipeline();
    p.set("a", 1);
    p.incr("a");
    expect(await p.exec()).toEqual(["OK", 2]);
    const fresh = await openSse(`${proxy.url}/subscribe/news`, token);
    expect(await fresh.reader.next()).toBe("subscribe,news,1");
    fresh.reader.close();
  });

  it("answers 503 when Redis is not there at start, within the first-connect wait", async () => {
    const nowhere = createBackend({ redisUrl: `redis://127.0.0.1:${await freePort()}`, log: () => {}, firstConnectWaitMs: 300 });
    const p2 = await startRedisProxy({ token, backend: nowhere });
    try {
      const res = await raw(p2.url, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: '["PING"]' });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(res.json).toMatchObject({ error: expect.stringMatching(/not reachable/) });
    } finally {
      await p2.stop();
      await nowhere.close();
    }
  });
});
