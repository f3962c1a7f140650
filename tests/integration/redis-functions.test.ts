/**
 * Redis as functions see it, through real workerd and the Redis object (the proxy for subscriptions and /readyz), with a private redis-server that the test
 * kills and starts again: caches are bypassed (the request still succeeds from PostgreSQL), rate limiting
 * follows its fail mode, nothing crashes, and everything recovers by itself.
 */
import { Redis as IoRedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { freePort, haveRedisServer, PrivateRedis } from "../helpers/redis-servers.ts";
import { bearer, mintToken, testJwtSecret } from "../helpers/auth.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";
import { needs } from "../helpers/needs.ts";

const canStopRedis = needs({
  suite: "functions when Redis goes down and comes back",
  service: "/usr/bin/redis-server (a private one is started and killed)",
  available: haveRedisServer(),
  fix: "apt-get install -y redis-server",
});

describe.runIf(canStopRedis)("functions when Redis goes down and comes back", () => {
  const databaseUrl = inject("databaseUrl");
  let redisServer: PrivateRedis;
  let project: TestProject;
  let sup: Supervisor;
  const ip = `192.0.2.${Math.floor(Math.random() * 250) + 1}`;
  const jwtSecret = testJwtSecret();
  let token: string;

  beforeAll(async () => {
    redisServer = new PrivateRedis(await freePort());
    await redisServer.start();
    project = await createTestProject({ fixtures: ["limited"] });
    if (databaseUrl) await migrateUp(databaseUrl, project.paths.migrations);
    token = await mintToken(jwtSecret);
    const env = { REDIS_URL: redisServer.url, AUTH_JWT_SECRET: jwtSecret, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) };
    sup = await startSupervisor({ paths: project.paths, host: "127.0.0.1", port: 0, env, log: () => {} });
  });
  afterAll(async () => {
    await sup?.stop();
    await redisServer?.kill();
    await project?.dispose();
  });

  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${sup.url}${path}`, { redirect: "manual", ...init, headers: { "x-forwarded-for": ip, ...init.headers } });

  it("uses the real Redis while it is up", async () => {
    expect(sup.backends.redis).toMatchObject({ kind: "redis", label: `redis at ${redisServer.url}` });
    const res = await call("/links", {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer(token) },
      body: JSON.stringify({ url: "https://example.com/r", code: "redis-down" }),
    });
    expect(res.status).toBe(201);
    expect((await call("/links/redis-down")).headers.get("x-cache")).toBe("miss");
    await expect.poll(async () => (await call("/links/redis-down")).headers.get("x-cache")).toBe("hit");
    const ready = await fetch(`${sup.internalUrl}/readyz`, { headers: { authorization: `Bearer ${sup.internalToken}` } });
    expect(await ready.json()).toMatchObject({ ok: true, checks: { redis: { ok: true }, redisObject: { ok: true } } });
    // Functions reach it through the Redis object's connection (lib/workers/redis/), not the proxy's.
    const admin = new IoRedis(redisServer.url);
    try {
      expect(String(await admin.call("CLIENT", "LIST"))).toMatch(/name=workyard-redis-object /);
    } finally {
      admin.disconnect();
    }
  });

  it("bypasses the cache and follows each rate limit's fail mode while Redis is down", async () => {
    await redisServer.kill();
    const redirect = await call("/links/redis-down");
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("x-cache")).toBe("bypass");
    expect(redirect.headers.get("location")).toBe("https://example.com/r");

    const open = await call("/limited/open");
    expect(open.status).toBe(200);
    expect(open.headers.get("ratelimit-policy")).toBe("bypassed");
    const closed = await call("/limited/closed");
    expect(closed.status).toBe(503);
    expect(closed.headers.get("retry-after")).toBe("5");
    expect(await closed.json()).toMatchObject({ error: { code: "rate_limit_unavailable" } });
    const ready = await fetch(`${sup.internalUrl}/readyz`, { headers: { authorization: `Bearer ${sup.internalToken}` } });
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      ok: false,
      checks: { redis: { ok: false }, redisObject: { ok: false }, database: { ok: true } },
    });

    // Writes still work; their click counts fall back to PostgreSQL.
    const created = await call("/links", {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer(token) },
      body: JSON.stringify({ url: "https://example.com/while-down" }),
    });
    expect(created.status).toBe(201);
    expect((await call("/hello")).status).toBe(200);
  });

  it("recovers by itself when Redis is back", async () => {
    await redisServer.start();
    await expect.poll(async () => (await call("/limited/closed")).status, { timeout: 15_000, interval: 250 }).toBe(200);
    await expect.poll(async () => (await call("/links/redis-down")).headers.get("x-cache"), { timeout: 10_000 }).toBe("hit");
    expect((await call("/limited/closed")).status).toBe(200);
    const limited = await call("/limited/closed");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("ratelimit-limit")).toBe("2");
  });
});
