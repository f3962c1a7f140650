/**
 * The Upstash REST protocol cases that every server of it here answers alike: the Redis proxy
 * (tests/integration/redis-proxy.test.ts) and the Redis object in workerd (tests/integration/redis-object.test.ts),
 * both driven by @upstash/redis itself plus raw requests for what the client hides. What only an HTTP server has
 * (tokens, methods, body limits, path-style commands, subscriptions) stays in the proxy's file.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { expect } from "vitest";
import type { TestFunction } from "vitest";
import type { Raw } from "./redis-servers.ts";

export interface ProtocolContext {
  /** A key of this suite (testKeys), and the prefix every one starts with. */
  k: (name: string) => string;
  prefix: string;
  /** The client, made once the server is up. */
  redis: () => Redis;
  /** POSTs a body as @upstash/redis would (with base64 responses), without the client's decoding. */
  post: (path: string, body: unknown, headers?: Record<string, string>) => Promise<Raw>;
}

/** Declares the cases with `test` (it, or it.skip when the server is not available). */
export function protocolCases(test: (name: string, fn: TestFunction) => void, { k, prefix, redis, post }: ProtocolContext): void {
  test("strings: set, get, missing keys, expiry, a value that is literally OK", async () => {
    expect(await redis().set(k("s"), "hello")).toBe("OK");
    expect(await redis().get(k("s"))).toBe("hello");
    expect(await redis().get(k("missing"))).toBeNull();
    expect(await redis().set(k("ttl"), "x", { ex: 100 })).toBe("OK");
    const ttl = await redis().ttl(k("ttl"));
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
    await redis().set(k("ok"), "OK");
    expect(await redis().get(k("ok"))).toBe("OK");
    expect(await redis().mget(k("ok"), k("s"), k("missing"))).toEqual(["OK", "hello", null]);
    expect(await redis().set(k("s"), "again", { nx: true })).toBeNull();
    expect(await redis().append(k("s"), " world")).toBe(11);
    expect(await redis().getrange(k("s"), 0, 4)).toBe("hello");
  });

  test("numbers: counters and floats", async () => {
    expect(await redis().incr(k("n"))).toBe(1);
    expect(await redis().incrby(k("n"), 41)).toBe(42);
    expect(await redis().decr(k("n"))).toBe(41);
    expect(await redis().get(k("n"))).toBe(41);
    expect(await redis().incrbyfloat(k("f"), 1.5)).toBe(1.5);
    await redis().set(k("num"), 12345.678);
    expect(await redis().get(k("num"))).toBe(12345.678);
  });

  test("JSON values round-trip", async () => {
    const value = { id: 7, name: "Ada", tags: ["x", "y"], nested: { ok: true, none: null }, emoji: "🎉" };
    await redis().set(k("json"), value);
    expect(await redis().get(k("json"))).toEqual(value);
    await redis().set(k("arr"), [1, "two", { three: 3 }]);
    expect(await redis().get(k("arr"))).toEqual([1, "two", { three: 3 }]);
  });

  test("unicode keys and values: emoji, CJK, combining marks", async () => {
    const values = ["😀👍🏽🇫🇷", "日本語のテキスト", "中文字符", "한국어", "e\u0301 naïve façade", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"];
    for (const [i, v] of values.entries()) await redis().set(k(`u:${i}:${v}`), v);
    for (const [i, v] of values.entries()) expect(await redis().get(k(`u:${i}:${v}`))).toBe(v);
    expect(await redis().strlen(k("u:0:😀👍🏽🇫🇷"))).toBe(Buffer.byteLength(values[0] ?? ""));
  });

  test("binary-ish values stay byte-exact", async () => {
    const tricky = "\u0000\u0001\u0002\u007f\u00ff\u00e9\r\n\t\\\"'";
    await redis().set(k("bin"), tricky);
    expect(await redis().get(k("bin"))).toBe(tricky);
  });

  test("hashes: hgetall answers a flat array that the client turns into an object", async () => {
    await redis().hset(k("h"), { name: "Ada", age: 36, city: "東京", "emoji 🔑": "🗝️" });
    expect(await redis().hgetall(k("h"))).toEqual({ name: "Ada", age: 36, city: "東京", "emoji 🔑": "🗝️" });
    expect(await redis().hget(k("h"), "city")).toBe("東京");
    expect(await redis().hincrby(k("h"), "age", 1)).toBe(37);
    expect(await redis().hgetall(k("nohash"))).toBeNull();
    const flat = await post("/", ["HGETALL", k("h")]);
    const result = (flat.json as { result: unknown }).result;
    expect(Array.isArray(result)).toBe(true);
    const decoded = (result as string[]).map((s) => Buffer.from(s, "base64").toString());
    expect(decoded).toHaveLength(8);
    expect(decoded[decoded.indexOf("city") + 1]).toBe("東京");
  });

  test("sorted sets with unicode members", async () => {
    const key = k("z");
    expect(await redis().zadd(key, { score: 1, member: "日本" }, { score: 2.5, member: "😀" }, { score: 3, member: "ñandú" })).toBe(3);
    expect(await redis().zrange(key, 0, -1)).toEqual(["日本", "😀", "ñandú"]);
    expect(await redis().zrange(key, 0, -1, { withScores: true })).toEqual(["日本", 1, "😀", 2.5, "ñandú", 3]);
    expect(await redis().zscore(key, "😀")).toBe(2.5);
    expect(await redis().zrank(key, "ñandú")).toBe(2);
    expect(await redis().zincrby(key, 10, "日本")).toBe(11);
    expect(await redis().zrange(key, 0, 0, { rev: true })).toEqual(["日本"]);
    expect(await redis().zrem(key, "😀")).toBe(1);
    expect(await redis().zcard(key)).toBe(2);
  });

  test("lists and sets", async () => {
    expect(await redis().rpush(k("l"), "a", "b", "ç")).toBe(3);
    expect(await redis().lrange(k("l"), 0, -1)).toEqual(["a", "b", "ç"]);
    expect(await redis().lpop(k("l"))).toBe("a");
    expect(await redis().sadd(k("set"), "x", "y", "🙂")).toBe(3);
    expect((await redis().smembers(k("set"))).sort()).toEqual(["x", "y", "🙂"].sort());
    expect(await redis().sismember(k("set"), "🙂")).toBe(1);
  });

  test("a pipeline with an error inside: the other commands still run, in order", async () => {
    const p = redis().pipeline();
    p.set(k("p"), "text");
    p.incr(k("p"));
    p.get(k("p"));
    p.set(k("p2"), "1");
    const out = await p.exec({ keepErrors: true });
    expect(out[0]).toEqual({ result: "OK", error: undefined });
    expect(out[1]?.error).toMatch(/not an integer/);
    expect(out[2]?.result).toBe("text");
    expect(out[3]?.result).toBe("OK");
    const again = redis().pipeline();
    again.get(k("p2"));
    again.incr(k("p"));
    await expect(again.exec()).rejects.toThrow(/Command 2 \[ incr \] failed: .*not an integer/);
  });

  test("multi-exec: runtime errors per command, queue-time errors discard the whole transaction", async () => {
    const tx = redis().multi();
    tx.set(k("m"), "text");
    tx.incr(k("m"));
    tx.set(k("m2"), "done");
    const out = await tx.exec({ keepErrors: true });
    expect(out[0]?.result).toBe("OK");
    expect(out[1]?.error).toMatch(/not an integer/);
    expect(out[2]?.result).toBe("OK");

    const bad = await post("/multi-exec", [
      ["SET", k("m3"), "never"],
      ["NOSUCHCOMMAND", "x"],
    ]);
    expect(bad.status).toBe(400);
    expect((bad.json as { error: string }).error).toMatch(/EXECABORT/);
    expect(await redis().get(k("m3"))).toBeNull();

    const arity = await post("/multi-exec", [["SET", k("m3"), "never"], ["GET"]]);
    expect(arity.status).toBe(400);
    expect((arity.json as { error: string }).error).toMatch(/EXECABORT.*wrong number of arguments/);
    expect(await redis().get(k("m3"))).toBeNull();
  });

  test("concurrent multi-execs never interleave", async () => {
    const n = 40;
    const runs = Array.from({ length: n }, async (_, i) => {
      const tx = redis().multi();
      tx.set(k("shared"), `tx-${i}`);
      tx.incr(k("counter"));
      tx.append(k("shared"), "-end");
      tx.get(k("shared"));
      return tx.exec();
    });
    const results = (await Promise.all(runs)) as [string, number, number, string][];
    results.forEach(([set, , , got], i) => {
      expect(set).toBe("OK");
      expect(got).toBe(`tx-${i}-end`);
    });
    expect(results.map((r) => r[1]).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  });

  test("EVAL, SCRIPT LOAD, EVALSHA and createScript", async () => {
    expect(await redis().eval("return {KEYS[1], ARGV[1], 1 + 1}", [k("e")], ["日本"])).toEqual([k("e"), "日本", 2]);
    expect(await redis().eval('redis.call("SET", KEYS[1], ARGV[1]); return redis.call("GET", KEYS[1])', [k("e")], ["via lua 😀"])).toBe(
      "via lua 😀",
    );
    expect(await redis().eval("return 3.99", [], [])).toBe(3);
    const sha = await redis().scriptLoad("return ARGV[1] .. ARGV[2]");
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await redis().evalsha(sha, [], ["a", "ü"])).toBe("aü");
    expect(await redis().scriptExists(sha, "0000000000000000000000000000000000000000")).toEqual([1, 0]);
    await expect(redis().evalsha("0000000000000000000000000000000000000000", [], [])).rejects.toThrow(/NOSCRIPT/);
    const script = redis().createScript<string>(`return "script:" .. ARGV[1] .. ${JSON.stringify(randomUUID())}`);
    expect(await script.exec([], ["x"])).toMatch(/^script:x/);
  });

  test("SCAN walks every key", async () => {
    const keys = Array.from({ length: 30 }, (_, i) => k(`scan:${i}`));
    const p = redis().pipeline();
    for (const key of keys) p.set(key, 1);
    await p.exec();
    const seen = new Set<string>();
    let cursor: string | number = 0;
    let rounds = 0;
    do {
      const [next, found]: [string | number, string[]] = await redis().scan(cursor, { match: `${prefix}scan:*`, count: 10 });
      for (const key of found) seen.add(key);
      cursor = next;
      rounds++;
    } while (String(cursor) !== "0" && rounds < 1000);
    expect([...seen].sort()).toEqual([...keys].sort());
    expect((await redis().keys(`${prefix}scan:*`)).length).toBe(30);
  });

  test("blocking and connection-state commands are refused with a clear 400", async () => {
    for (const cmd of [
      ["BLPOP", k("q"), "0"],
      ["BRPOP", k("q"), "1"],
      ["BLMOVE", k("q"), k("q2"), "LEFT", "RIGHT", "0"],
      ["BZPOPMIN", k("z"), "0"],
      ["WAIT", "1", "0"],
      ["XREAD", "BLOCK", "0", "STREAMS", k("s"), "$"],
      ["MONITOR"],
      ["SUBSCRIBE", k("c")],
      ["SELECT", "1"],
      ["MULTI"],
    ]) {
      const res = await post("/", cmd);
      expect(res.status, String(cmd[0])).toBe(400);
      expect((res.json as { error: string }).error).toMatch(/refuse|not available/);
    }
    const blpop = await post("/", ["BLPOP", k("q"), "0"]);
    expect((blpop.json as { error: string }).error).toMatch(/BLPOP would block the connection every client shares/);
    // In a pipeline only the refused command fails; the rest of the (auto-pipelined) batch runs.
    const pipe = await post("/pipeline", [
      ["SET", k("pb"), "1"],
      ["BLPOP", k("q"), "0"],
      ["GET", k("pb")],
    ]);
    expect(pipe.status).toBe(200);
    const entries = pipe.json as { result?: unknown; error?: string }[];
    expect(entries[0]).toEqual({ result: "OK" });
    expect(entries[1]?.error).toMatch(/BLPOP/);
    expect(entries[2]).toEqual({ result: Buffer.from("1").toString("base64") });
    // In a transaction it discards the whole transaction.
    const tx = await post("/multi-exec", [
      ["SET", k("tb"), "1"],
      ["BRPOP", k("q"), "0"],
    ]);
    expect(tx.status).toBe(400);
    expect(await redis().get(k("tb"))).toBeNull();
    // XREAD without BLOCK is fine.
    await redis().xadd(k("stream"), "*", { a: "1" });
    const xread = await post("/", ["XREAD", "COUNT", "1", "STREAMS", k("stream"), "0"]);
    expect(xread.status).toBe(200);
  });

  test("400 JSON for bad commands, unknown commands and failing single commands", async () => {
    const notArray = await post("/", { cmd: "GET" });
    expect(notArray.status).toBe(400);
    const objectArg = await post("/", ["SET", k("x"), { a: 1 }]);
    expect(objectArg.status).toBe(400);
    const unknown = await post("/", ["NOSUCHCOMMAND", "a"]);
    expect(unknown.status).toBe(400);
    expect((unknown.json as { error: string }).error).toMatch(/unknown command/i);
    await redis().set(k("str"), "abc");
    await expect(redis().incr(k("str"))).rejects.toThrow(/not an integer/);
    await expect(redis().hget(k("str"), "f")).rejects.toThrow(/WRONGTYPE/);
    const arity = await post("/", ["GET"]);
    expect(arity.status).toBe(400);
    expect((arity.json as { error: string }).error).toMatch(/wrong number of arguments/);
  });

  test("base64 encoding: strings encoded, OK and integers untouched, errors plain", async () => {
    await redis().set(k("enc"), "héllo");
    const enc = await post("/", ["GET", k("enc")]);
    expect(enc.json).toEqual({ result: Buffer.from("héllo").toString("base64") });
    expect((await post("/", ["SET", k("enc"), "x"])).json).toEqual({ result: "OK" });
    expect((await post("/", ["INCR", k("enc-n")])).json).toEqual({ result: 1 });
    const pipe = await post("/pipeline", [
      ["GET", k("enc")],
      ["INCR", k("enc")],
      ["MGET", k("enc"), k("nothing")],
    ]);
    expect(pipe.json).toEqual([{ result: "eA==" }, { error: "ERR value is not an integer or out of range" }, { result: ["eA==", null] }]);
  });
}
