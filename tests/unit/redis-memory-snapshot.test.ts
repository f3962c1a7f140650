/**
 * The in-memory Redis backend kept across restarts (`npm start` without REDIS_URL): keys of every type written
 * through the real proxy with @upstash/redis, the service stopped and a new one started on the same folder, the keys
 * read back the same way; the periodic save a crash leaves behind; a snapshot that cannot be read. Each test has its
 * own temporary folder.
 */
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "@upstash/redis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MEMORY_LABEL, MemoryBackend } from "../../lib/node/redis/proxy/index.ts";
import { decodeSnapshot, encodeSnapshot, fromBytes, toBytes } from "../../lib/node/redis/proxy/memory-snapshot.ts";
import { startRedisService } from "../../lib/node/redis/service.ts";
import type { RedisService, RedisServiceOptions } from "../../lib/node/redis/service.ts";
import { eventually } from "../helpers/eventually.ts";

let dir: string;
let file: string;
let logs: string[];
const services: RedisService[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "workyard-redis-memory-"));
  file = join(dir, ".workyard", "redis-memory.json");
  logs = [];
});

afterEach(async () => {
  for (const s of services.splice(0)) await s.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A service on the in-memory backend kept in `memoryFile`, and an Upstash client of it that returns raw strings. */
async function start(options: Partial<RedisServiceOptions> = {}) {
  const service = await startRedisService({ redisUrl: undefined, memoryFile: file, log: (line) => logs.push(line), ...options });
  services.push(service);
  const redis = new Redis({
    url: service.backend.proxyUrl,
    token: service.bindings.UPSTASH_REDIS_REST_TOKEN ?? "",
    enableTelemetry: false,
    automaticDeserialization: false,
  });
  const stop = async () => {
    services.splice(services.indexOf(service), 1);
    await service.stop();
  };
  return { service, redis, stop };
}

/** Everything the test wrote, read through the proxy. */
async function readAll(redis: Redis) {
  return {
    text: await redis.get("text"),
    unicode: await redis.get("unicode"),
    counter: await redis.get("counter"),
    hash: await redis.hgetall("hash"),
    list: await redis.lrange("list", 0, -1),
    set: (await redis.smembers("set")).sort(),
    zset: await redis.zrange("zset", 0, -1, { withScores: true }),
  };
}

describe("the in-memory backend kept in a file", () => {
  it("keeps strings, hashes, lists, sets and sorted sets with their TTLs across a stop and start; expired keys are gone", async () => {
    const first = await start();
    expect(first.service.backend.label).toBe(`in-memory (embedded default, saved in ${file} at stop and every 30 s)`);
    const { redis } = first;
    await redis.set("text", "hello", { px: 60_000 });
    await redis.set("unicode", "héllo wörld ✓ \u{1F600}");
    await redis.set("counter", 41);
    await redis.hset("hash", { a: "1", b: "two", "field with spaces": "x" });
    await redis.expire("hash", 120);
    await redis.rpush("list", "first", "second", "first");
    await redis.sadd("set", "x", "y", "z");
    await redis.zadd("zset", { score: 1.5, member: "a" }, { score: -2, member: "b" }, { score: 10, member: "c" });
    await redis.set("short", "gone soon", { px: 300 });
    const before = await readAll(redis);
    const ttlBefore = await redis.pttl("text");
    expect(ttlBefore).toBeGreaterThan(50_000);
    await first.stop();

    const saved = await stat(file);
    expect(saved.mode & 0o777).toBe(0o600);
    await new Promise((r) => setTimeout(r, 400)); // "short" runs out while nothing serves

    logs = [];
    const second = await start();
    expect(await readAll(second.redis)).toEqual(before);
    const ttlAfter = await second.redis.pttl("text");
    expect(ttlAfter).toBeLessThan(ttlBefore - 300); // counted down while stopped, not reset
    expect(ttlAfter).toBeGreaterThan(50_000);
    expect(await second.redis.ttl("hash")).toBeGreaterThan(100);
    expect(await second.redis.ttl("hash")).toBeLessThanOrEqual(120);
    expect(await second.redis.pttl("list")).toBe(-1);
    expect(await second.redis.exists("short")).toBe(0);
    expect(await second.redis.incr("counter")).toBe(42);
    expect(logs).toEqual([expect.stringMatching(/^\[redis\] restored 7 keys from .*redis-memory\.json \(1 expired while stopped\)$/)]);
  });

  it("keeps binary values as they are", async () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x41]);
    const first = new MemoryBackend({ snapshotFile: file });
    await first.restore();
    await first.command(["set", "bin", bytes]);
    await first.command(["hset", "h", "f", bytes]);
    await first.command(["rpush", "l", bytes, "text"]);
    await first.close();

    const second = new MemoryBackend({ snapshotFile: file });
    await second.restore();
    expect(await second.command(["get", "bin"])).toEqual(bytes);
    expect(await second.command(["hget", "h", "f"])).toEqual(bytes);
    expect(await second.command(["lrange", "l", "0", "-1"])).toEqual([bytes, Buffer.from("text")]);
    await second.close();
  });

  it("saves while running when something changed, so a crash loses only what came after the last save", async () => {
    const { redis, service } = await start({ memorySaveIntervalMs: 100 });
    expect(service.backend.label).toMatch(/every 0\.1 s\)$/);
    await redis.set("clicks:abc", 3);
    const holds = async (text: string) => (await readFile(file, "utf8").catch(() => "")).includes(text);
    expect(await eventually(() => holds("clicks:abc"), 3000)).toBe(true);

    // Reads change nothing: the file is not rewritten.
    const written = (await stat(file)).mtimeMs;
    for (let i = 0; i < 5; i++) {
      await redis.get("clicks:abc");
      await new Promise((r) => setTimeout(r, 60));
    }
    expect((await stat(file)).mtimeMs).toBe(written);

    // What a kill -9 now would leave: this file, never the one a stop writes. A new service restores it.
    const crashed = join(dir, "crashed", "redis-memory.json");
    await mkdir(join(dir, "crashed"));
    await cp(file, crashed);
    const after = await start({ memoryFile: crashed });
    expect(await after.redis.get("clicks:abc")).toBe("3");
  });

  it("a snapshot that cannot be read: one line, the file moved aside, the start goes on empty", async () => {
    await mkdir(join(dir, ".workyard"));
    await writeFile(file, '{"format":"workyard-redis-memory","version":1,"keys":[{"key":"k","ty');
    const { redis } = await start();
    expect(logs).toEqual([
      expect.stringMatching(
        /^\[redis\] could not restore the Redis snapshot .*redis-memory\.json: not JSON \(.*\); starting empty \(the file is now .*redis-memory\.json\.unreadable\)$/,
      ),
    ]);
    expect(await redis.dbsize()).toBe(0);
    expect(await readFile(`${file}.unreadable`, "utf8")).toContain('"key":"k"');
    await redis.set("k", "v");
    expect(await redis.get("k")).toBe("v");
  });

  it("a JSON file that is not a snapshot says what is wrong with it", async () => {
    await mkdir(join(dir, ".workyard"));
    await writeFile(
      file,
      JSON.stringify({ format: "workyard-redis-memory", version: 1, savedAt: "x", keys: [{ key: "k", type: "stream" }] }),
    );
    const { redis } = await start();
    expect(logs).toEqual([
      expect.stringMatching(/could not restore .*: not a workyard-redis-memory v1 snapshot \(keys\.0\.type: .*\); starting empty/),
    ]);
    expect(await redis.dbsize()).toBe(0);
  });

  it("without a file nothing is written and the label says so (npm run dev)", async () => {
    const { redis, service, stop } = await start({ memoryFile: undefined });
    expect(service.backend.label).toBe(MEMORY_LABEL);
    await redis.set("k", "v");
    await stop();
    await expect(stat(join(dir, ".workyard"))).rejects.toThrow(/ENOENT/);
  });
});

describe("the snapshot format", () => {
  it("keeps text as text and other bytes as base64", () => {
    expect(toBytes("héllo")).toBe("héllo");
    expect(toBytes(42)).toBe("42");
    expect(toBytes(Buffer.from([0xff, 0x01]))).toEqual({ base64: "/wE=" });
    expect(fromBytes({ base64: "/wE=" })).toEqual(Buffer.from([0xff, 0x01]));
  });

  it("drops keys whose deadline has passed and keeps the rest", () => {
    const text = encodeSnapshot([
      { key: "old", type: "string", value: "x", expiresAt: 1_000 },
      { key: "live", type: "zset", value: [["m", "-inf"]], expiresAt: 5_000 },
      { key: "forever", type: "set", value: ["a"] },
    ]);
    const { keys, expired } = decodeSnapshot(text, 2_000);
    expect(expired).toBe(1);
    expect(keys.map((k) => k.key)).toEqual(["live", "forever"]);
  });
});
