/**
 * The outbound breaker's rules (lib/sdk/outbound/breaker-state.ts), run the same way against both stores: the isolate's
 * own (memory-store.ts) and the shared one (redis-store.ts, its Lua script) through the project's Redis proxy on its
 * in-memory backend (the integration test runs it on a real Redis). Then the upstream settings: the schema, the
 * defaults, failover chains, and the build's check of wrangler.toml tables.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "@upstash/redis/cloudflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkUpstreams,
  ConfigError,
  mergeConfig,
  mergeUpstreams,
  readFunctionConfig,
  readSharedConfig,
} from "../../lib/node/build/wrangler-config.ts";
import { createBackend, startRedisProxy } from "../../lib/node/redis/proxy/index.ts";
import type { RedisProxy } from "../../lib/node/redis/proxy/index.ts";
import { CLOSED, openWait, retryAfterMs } from "../../lib/sdk/outbound/breaker-state.ts";
import { MemoryStore } from "../../lib/sdk/outbound/memory-store.ts";
import { RedisStore } from "../../lib/sdk/outbound/redis-store.ts";
import { Breaker } from "../../lib/sdk/outbound/breaker.ts";
import { resolve } from "../../lib/sdk/outbound/index.ts";
import type { BreakerStore } from "../../lib/sdk/outbound/store.ts";
import { failoverChain, upstreamPolicy, upstreamTablesSchema } from "../../lib/shared/upstream-policy.ts";

const waits = { firstMs: 1000, maxMs: 3000 };
const T = 1_796_000_000_000; // a time past 32-bit integers, as real ones are

let proxy: RedisProxy;
const backend = createBackend();

beforeAll(async () => {
  proxy = await startRedisProxy({ token: "unit", backend });
});
afterAll(async () => {
  await proxy.stop();
  await backend.close();
});

const stores: [string, () => BreakerStore][] = [
  ["memory", () => new MemoryStore()],
  [
    "redis (Lua)",
    () => new RedisStore(new Redis({ url: proxy.url, token: "unit", retry: false, enableTelemetry: false, enableAutoPipelining: false })),
  ],
];

describe.each(stores)("breaker rules on the %s store", (_name, make) => {
  it("counts failures in a row, a success starts again, the threshold-th opens it", async () => {
    const s = make();
    const name = `u${Math.random().toString(36).slice(2)}`;
    expect(await s.read(name)).toEqual(CLOSED);
    expect((await s.fail(name, T, 3)).record).toMatchObject({ state: "closed", failures: 1 });
    expect((await s.fail(name, T, 3)).record).toMatchObject({ state: "closed", failures: 2 });
    expect((await s.succeed(name)).record).toMatchObject({ state: "closed", failures: 0 });
    await s.fail(name, T, 3);
    await s.fail(name, T, 3);
    const opened = await s.fail(name, T + 5, 3);
    expect(opened).toEqual({ changed: true, record: { state: "open", since: T + 5, failures: 0, opens: 1, probeUntil: 0, version: 1 } });
    // Failures of calls that were already in flight change nothing more.
    expect(await s.fail(name, T + 6, 3)).toMatchObject({ changed: false, record: { state: "open", since: T + 5 } });
    expect(await s.read(name)).toMatchObject({ state: "open", since: T + 5, opens: 1 });
  });

  it("agrees with itself when calls race: one probe of five asked at once, five failures at once counted five times", async () => {
    const s = make();
    const name = `u${Math.random().toString(36).slice(2)}`;
    const counted = await Promise.all(Array.from({ length: 5 }, () => s.fail(name, T, 10)));
    expect(Math.max(...counted.map((c) => c.record.failures))).toBe(5);
    await s.trip(name, T);
    const asked = await Promise.all(Array.from({ length: 5 }, () => s.probe(name, T + 1000, waits, 500)));
    expect(asked.filter((a) => a.granted)).toHaveLength(1);
  });

  it("grants one probe after the wait, refuses others until its lease ends, reopens with a doubled wait, closes", async () => {
    const s = make();
    const name = `u${Math.random().toString(36).slice(2)}`;
    await s.trip(name, T);
    expect(await s.probe(name, T + 999, waits, 500)).toMatchObject({ granted: false, changed: false, record: { state: "open" } });
    const probe = await s.probe(name, T + 1000, waits, 500);
    expect(probe).toMatchObject({ granted: true, changed: true, record: { state: "half_open", since: T + 1000, probeUntil: T + 1500 } });
    // One probe at a time, whoever asks.
    expect((await s.probe(name, T + 1200, waits, 500)).granted).toBe(false);
    // A probe whose caller vanished: its lease ends, the next asker probes.
    expect(await s.probe(name, T + 1500, waits, 500)).toMatchObject({
      granted: true,
      record: { state: "half_open", probeUntil: T + 2000 },
    });
    // The probe fails: open again, the wait doubled.
    const reopened = await s.trip(name, T + 1600);
    expect(reopened.record).toMatchObject({ state: "open", since: T + 1600, opens: 2 });
    expect(retryAfterMs(reopened.record, T + 1600, waits)).toBe(2000);
    expect((await s.probe(name, T + 3599, waits, 500)).granted).toBe(false);
    expect((await s.probe(name, T + 3600, waits, 500)).granted).toBe(true);
    const closed = await s.close(name, T + 3700);
    expect(closed).toMatchObject({ changed: true, record: { state: "closed", since: T + 3700, opens: 0, failures: 0 } });
    // A closed breaker: a probe needs no asking, a close changes nothing.
    expect(await s.probe(name, T + 3800, waits, 500)).toMatchObject({ granted: true, changed: false });
    expect((await s.close(name, T + 3800)).changed).toBe(false);
  });
});

describe("a breaker as an isolate uses it", () => {
  it("sampling: opens once over failure_ratio of at least min_calls failed, then refuses", async () => {
    const b = new Breaker(
      "s",
      upstreamPolicy({ breaker: "sampling", min_calls: 4, failure_ratio: 0.5, window_ms: 10_000 }),
      new MemoryStore(),
      null,
    );
    for (const ok of [true, false, true]) {
      const a = await b.admit();
      expect(a).toEqual({ go: true, probe: false });
      await (ok ? b.succeeded({ probe: false }) : b.failed({ probe: false }, "x"));
    }
    expect(b.view.state).toBe("closed");
    await b.failed({ probe: false }, "x");
    await b.failed({ probe: false }, "x");
    expect(b.view.state).toBe("open");
    expect(await b.admit()).toMatchObject({ go: false });
  });

  it("decides alone when Redis does not answer, and says so once", async () => {
    // A real client of a port nothing listens on: every command fails at once.
    const unreachable = new RedisStore(new Redis({ url: "http://127.0.0.1:1", token: "x", retry: false, enableTelemetry: false }));
    const b = new Breaker("down", upstreamPolicy({ failures: 2 }), new MemoryStore(), unreachable);
    const warn = console.warn;
    const lines: string[] = [];
    console.warn = (...args: unknown[]) => void lines.push(args.join(" "));
    try {
      await b.failed({ probe: false }, "x");
      await b.failed({ probe: false }, "x");
    } finally {
      console.warn = warn;
    }
    expect(b.scope()).toBe("isolate");
    expect(b.view.state).toBe("open");
    expect(await b.admit()).toMatchObject({ go: false });
    expect(lines.filter((l) => /shared breaker state \(Redis\) did not answer/.test(l))).toHaveLength(1);
  });
});

describe("upstream.fetch paths", () => {
  it("go under the url's own path, the query untouched; no url is the caller's mistake", () => {
    expect(resolve("p", "https://h.example/v1", "/charges?next=https://x//y")).toBe("https://h.example/v1/charges?next=https://x//y");
    expect(resolve("p", "https://h.example/v1/", "charges")).toBe("https://h.example/v1/charges");
    expect(() => resolve("p", undefined, "/x")).toThrow(/upstream "p" has no url setting/);
  });
});

describe("breaker waits", () => {
  it("double per reopening, up to the longest wait", () => {
    expect([1, 2, 3, 4].map((n) => openWait(n, 1000, 3000))).toEqual([1000, 2000, 3000, 3000]);
    // A longest wait below the first one is the first one.
    expect(openWait(3, 1000, 10)).toBe(1000);
  });
});

describe("upstream settings", () => {
  it("fill in the defaults under what was written, and refuse what cannot be used", () => {
    expect(upstreamPolicy({ retries: 0 })).toMatchObject({
      retries: 0,
      timeout_ms: 10_000,
      breaker: "consecutive",
      failures: 5,
      shared: true,
    });
    const bad = upstreamTablesSchema.safeParse({ Payments: {}, ok: { retries: 99, breaker: "sometimes", url: "ftp://x", extra: 1 } });
    expect(bad.success).toBe(false);
    const paths = bad.error?.issues.map((i) => i.path.join(".")).sort();
    expect(paths).toEqual(["Payments", "ok", "ok.breaker", "ok.retries", "ok.url"]);
  });

  it("follow failover chains and name a circle", () => {
    expect(failoverChain("a", { a: { failover: "b" }, b: { failover: "c" } })).toEqual(["a", "b", "c"]);
    expect(failoverChain("x", {})).toEqual(["x"]);
    expect(failoverChain("a", { a: { failover: "b" }, b: { failover: "a" } })).toEqual({
      problem: 'upstream "a" fails over in a circle: a → b → a',
    });
  });

  it("from both wrangler.toml files merge upstream by upstream into the WORKYARD_UPSTREAMS var; a circle is a ConfigError", async () => {
    const dir = await mkdtemp(join(tmpdir(), "workyard-upstreams-"));
    try {
      await writeFile(
        join(dir, "shared.toml"),
        'compatibility_date = "2026-01-01"\n[workyard.upstreams.pay]\nurl = "https://pay.example"\nretries = 1\n[workyard.upstreams.pay-b]\nurl = "https://b.example"\n',
      );
      await writeFile(join(dir, "own.toml"), '[workyard]\ntimeout_ms = 2000\n[workyard.upstreams.pay]\nretries = 3\nfailover = "pay-b"\n');
      const shared = await readSharedConfig(join(dir, "shared.toml"));
      const own = await readFunctionConfig(join(dir, "own.toml"));
      expect(mergeConfig("fn", "/x.ts", shared, own).vars).toEqual({
        WORKYARD_UPSTREAMS: { pay: { url: "https://pay.example", retries: 3, failover: "pay-b" }, "pay-b": { url: "https://b.example" } },
      });
      expect(() => checkUpstreams("own.toml", mergeUpstreams(shared, own))).not.toThrow();
      await writeFile(
        join(dir, "circle.toml"),
        '[workyard.upstreams.pay-b]\nfailover = "pay"\n[workyard.upstreams.pay]\nfailover = "pay-b"\n',
      );
      const circle = await readFunctionConfig(join(dir, "circle.toml"));
      expect(() => checkUpstreams("circle.toml", mergeUpstreams(shared, circle))).toThrow(ConfigError);
      expect(() => checkUpstreams("circle.toml", mergeUpstreams(shared, circle))).toThrow(
        /circle\.toml: upstream "pay(-b)?" fails over in a circle/,
      );
      await writeFile(join(dir, "typo.toml"), "[workyard.upstreams.pay]\nretrys = 3\n");
      await expect(readFunctionConfig(join(dir, "typo.toml"))).rejects.toThrow(/workyard\.upstreams\.pay: retrys: not supported here/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
