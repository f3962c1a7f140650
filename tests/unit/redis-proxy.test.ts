/**
 * The Redis proxy's pure parts (encoding, refusals, the in-memory backend's checks, SSE framing) and its
 * lifecycle (options, stop with open streams, large bodies), on the in-memory backend.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createBackend, RedisReplyError, startRedisProxy } from "../../lib/node/redis/proxy/index.ts";
import { refusal } from "../../lib/node/redis/proxy/commands.ts";
import { canonicalOptions, isFloat, isInteger, queueTimeError } from "../../lib/node/redis/proxy/memory-checks.ts";
import { encodeReply, outcomesBody, parseBatch, parseCommand } from "../../lib/node/redis/proxy/protocol.ts";
import { sseEvent } from "../../lib/node/redis/proxy/subscribe.ts";
import { openSse, raw } from "../helpers/redis-servers.ts";

describe("encoding", () => {
  const b = (s: string) => Buffer.from(s);
  it("encodes every string recursively, keeps a top-level OK, numbers and nulls", () => {
    expect(encodeReply(b("OK"), true)).toBe("OK");
    expect(encodeReply(b("hé"), true)).toBe(b("hé").toString("base64"));
    expect(encodeReply([b("OK"), 1, null, [b("x")]], true)).toEqual([b("OK").toString("base64"), 1, null, [b("x").toString("base64")]]);
    expect(encodeReply([b("a"), 2], false)).toEqual(["a", 2]);
  });
  it("never encodes errors in batch answers", () => {
    const body = outcomesBody(
      [
        { ok: true, reply: b("v") },
        { ok: false, error: new RedisReplyError("ERR boom") },
      ],
      true,
    );
    expect(JSON.parse(body)).toEqual([{ result: "dg==" }, { error: "ERR boom" }]);
  });
  it("parses commands, stringifying numbers and booleans, and rejects other shapes", () => {
    expect(parseCommand(["SET", "k", 1, true])).toEqual(["SET", "k", "1", "true"]);
    expect(() => parseCommand([])).toThrow(/non-empty JSON array/);
    expect(() => parseCommand(["SET", "k", null])).toThrow(/element 2/);
    expect(() => parseBatch([["PING"], "PING"], 10)).toThrow(/command 1/);
    expect(() => parseBatch([["PING"], ["PING"]], 1)).toThrow(/limit of 1/);
  });
});

describe("refusals", () => {
  it("refuses what would block or take over the shared connection, and nothing else", () => {
    for (const cmd of [
      ["blpop", "q", "0"],
      ["BZPOPMAX", "z", "0"],
      ["xreadgroup", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"],
      // A group and a consumer named like the options: still the BLOCK after them.
      ["XREADGROUP", "GROUP", "streams", "streams", "COUNT", "1", "BLOCK", "0", "STREAMS", "k", ">"],
      ["xread", "COUNT", "2", "BLOCK", "10", "STREAMS", "k", "$"],
      ["monitor"],
      ["psubscribe", "*"],
      ["exec"],
      ["hello", "3"],
      ["client", "pause", "100"],
      ["debug", "sleep", "1"],
    ]) {
      expect(refusal(cmd), cmd.join(" ")).toBeDefined();
    }
    for (const cmd of [
      ["get", "k"],
      ["xread", "STREAMS", "block", "0"],
      ["XREADGROUP", "GROUP", "block", "block", "COUNT", "5", "STREAMS", "k", ">"], // named "block", without BLOCK
      ["client", "id"],
      ["eval", "return 1", "0"],
      ["publish", "c", "m"],
    ]) {
      expect(refusal(cmd), cmd.join(" ")).toBeUndefined();
    }
  });
});

describe("in-memory checks", () => {
  it("knows Redis's number syntax", () => {
    expect(isInteger("-12")).toBe(true);
    expect(isInteger("1.5")).toBe(false);
    expect(isInteger(" 1")).toBe(false);
    expect(isFloat("-inf")).toBe(true);
    expect(isFloat("1e3")).toBe(true);
    expect(isFloat("abc")).toBe(false);
  });
  it("finds unknown commands and wrong argument counts from Redis's command table", () => {
    expect(queueTimeError(["nosuch", "a"])).toMatch(/unknown command 'nosuch'/);
    expect(queueTimeError(["get"])).toMatch(/wrong number of arguments for 'get'/);
    expect(queueTimeError(["set", "k", "v", "EX", "1"])).toBeUndefined();
  });
  it("upper-cases option keywords only where they are keywords", () => {
    expect(canonicalOptions(["set", "k", "ex", "ex", "10"])).toEqual(["set", "k", "ex", "EX", "10"]);
    expect(canonicalOptions(["zadd", "z", "nx", "ch", "1", "nx"])).toEqual(["zadd", "z", "NX", "CH", "1", "nx"]);
    expect(canonicalOptions(["xread", "count", "2", "streams", "count", "0"])).toEqual(["xread", "COUNT", "2", "STREAMS", "count", "0"]);
  });
  it("answers like Redis where the mock alone would not", async () => {
    const backend = createBackend();
    try {
      await backend.command(["set", "s", "abc"]);
      await expect(backend.command(["incr", "s"])).rejects.toThrow(/not an integer/);
      expect(await backend.command(["get", "s"])).toEqual(Buffer.from("abc"));
      await expect(backend.command(["lpush", "s", "x"])).rejects.toThrow(/WRONGTYPE/);
      await expect(backend.command(["set", "s", "v", "FOO"])).rejects.toThrow(/syntax error/);
      await expect(backend.command(["zadd", "z", "notanumber", "m"])).rejects.toThrow(/not a valid float/);
      expect(await backend.command(["set", "s", "new", "get"])).toEqual(Buffer.from("abc"));
      expect(await backend.command(["strlen", "s"])).toBe(3);
      expect(await backend.command(["eval", "return {1, false, true, 2.7}", "0"])).toEqual([1, null, 1, 2]);
      await expect(backend.command(["pfadd", "h", "a"])).rejects.toThrow(/not supported by the in-memory backend/);
    } finally {
      await backend.close();
    }
  });
  it("keeps separate in-memory backends apart", async () => {
    const a = createBackend();
    const b = createBackend();
    try {
      await a.command(["set", "same", "a"]);
      expect(await b.command(["get", "same"])).toBeNull();
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("SSE framing", () => {
  it("frames events as @upstash/redis reads them, one data line per line of text", () => {
    expect(sseEvent({ kind: "subscribe", channel: Buffer.from("c"), count: 1 })).toBe("data: subscribe,c,1\n\n");
    expect(sseEvent({ kind: "pmessage", pattern: Buffer.from("c*"), channel: Buffer.from("c1"), message: Buffer.from("hi") })).toBe(
      "data: pmessage,c*,c1,hi\n\n",
    );
    expect(sseEvent({ kind: "message", channel: Buffer.from("c"), message: Buffer.from("a\nb") })).toBe("data: message,c,a\ndata: b\n\n");
  });
});

describe("proxy lifecycle", () => {
  it("listens on loopback only and needs a token", async () => {
    const backend = createBackend();
    try {
      await expect(startRedisProxy({ host: "0.0.0.0", token: "t", backend })).rejects.toThrow(/loopback only/);
      await expect(startRedisProxy({ token: "", backend })).rejects.toThrow(/non-empty token/);
    } finally {
      await backend.close();
    }
  });

  it("stop() ends open subscription streams; big bodies get 413 without breaking the connection pool", async () => {
    const token = randomUUID();
    const backend = createBackend();
    const proxy = await startRedisProxy({ token, backend, maxBodyBytes: 1024 });
    try {
      const big = await raw(proxy.url, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify(["SET", "k", "x".repeat(3_000_000)]),
      });
      expect(big.status).toBe(413);
      expect(big.json).toMatchObject({ error: expect.stringMatching(/limit of 1024 bytes/) });
      const ok = await raw(proxy.url, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: '["PING"]' });
      expect(ok.json).toEqual({ result: "PONG" });
      const sse = await openSse(`${proxy.url}/subscribe/c`, token);
      expect(await sse.reader.next()).toBe("subscribe,c,1");
      await proxy.stop();
      await expect(sse.reader.next()).rejects.toThrow(/ended|terminated|aborted/);
      expect(await backend.command(["publish", "c", "x"])).toBe(0);
    } finally {
      await backend.close();
    }
  });
});
