/**
 * What Redis checks before it runs a command and ioredis-mock does not: unknown commands, the number of
 * arguments, the type of the keys (WRONGTYPE), numeric arguments and stored numbers, SET's options.
 * Without these the mock answers `INCR` on "abc" with NaN (and stores it), GET on a hash with the hash,
 * and `SET k` with OK. The rules come from Redis's own command table (@ioredis/commands: arity and key
 * positions) and from Redis's error messages.
 */
import commands from "@ioredis/commands/built/commands.json" with { type: "json" };
import { getKeyIndexes } from "@ioredis/commands";
import type { RedisArgs } from "./backend.ts";

interface CommandSpec {
  arity: number;
  flags: string[];
}

const TABLE = commands as Readonly<Record<string, CommandSpec | undefined>>;

export type KeyType = "none" | "string" | "hash" | "list" | "set" | "zset" | "other";

/** Reads a key's type from the store without running a command. */
export type TypeOf = (key: string) => KeyType;
/** Reads a stored string (or hash field) without running a command. */
export type ValueOf = (key: string, field?: string) => string | undefined;

export const NOT_INTEGER = "ERR value is not an integer or out of range";
export const NOT_FLOAT = "ERR value is not a valid float";
export const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value";
const SYNTAX = "ERR syntax error";

const STRING_COMMANDS = new Set([
  "get",
  "getdel",
  "getex",
  "getrange",
  "getset",
  "substr",
  "append",
  "strlen",
  "incr",
  "incrby",
  "decr",
  "decrby",
  "incrbyfloat",
  "setrange",
  "getbit",
  "setbit",
  "bitcount",
  "bitpos",
  "lcs",
]);
const LIST_COMMANDS = new Set([
  "lpush",
  "rpush",
  "lpushx",
  "rpushx",
  "lpop",
  "rpop",
  "llen",
  "lrange",
  "lindex",
  "lset",
  "linsert",
  "lrem",
  "ltrim",
  "lpos",
  "lmove",
  "rpoplpush",
  "lmpop",
]);
const SET_COMMANDS = new Set([
  "sadd",
  "srem",
  "smembers",
  "sismember",
  "smismember",
  "scard",
  "spop",
  "srandmember",
  "sinter",
  "sunion",
  "sdiff",
  "sinterstore",
  "sunionstore",
  "sdiffstore",
  "smove",
  "sscan",
  "sintercard",
]);
/** Sorted-set commands that also take plain sets as input. */
const ZSET_ACCEPTS_SETS = new Set(["zunionstore", "zinterstore", "zunion", "zinter", "zdiff", "zdiffstore", "zintercard"]);
/** Commands whose first key is a destination that gets overwritten, whatever it held. */
const DESTINATION_FIRST = new Set(["sinterstore", "sunionstore", "sdiffstore", "zrangestore"]);

function expectedType(name: string): KeyType | undefined {
  if (STRING_COMMANDS.has(name)) return "string";
  if (LIST_COMMANDS.has(name)) return "list";
  if (SET_COMMANDS.has(name)) return "set";
  if (name.startsWith("h") && name !== "hello") return "hash";
  if (name.startsWith("z") && !ZSET_ACCEPTS_SETS.has(name)) return "zset";
  return undefined;
}

/** False only for commands Redis flags read-only: whatever else runs may have changed the data (EVAL, EXPIRE, ...). */
export function mayWrite(name: string): boolean {
  return !(TABLE[name.toLowerCase()]?.flags.includes("readonly") ?? false);
}

/** Redis's integer syntax: optional minus, digits, in range. */
export function isInteger(s: string | undefined): boolean {
  return s !== undefined && /^-?\d{1,19}$/.test(s) && Number.isSafeInteger(Number(s));
}

/** Redis's float syntax: a finite number or ±inf, no surrounding spaces. */
export function isFloat(s: string | undefined): boolean {
  if (s === undefined || s === "" || s.trim() !== s) return false;
  if (/^[+-]?inf(inity)?$/i.test(s)) return true;
  return Number.isFinite(Number(s));
}

/** Error message for a command Redis would refuse before running it, else undefined. */
export function queueTimeError(args: RedisArgs): string | undefined {
  const name = String(args[0]).toLowerCase();
  const spec = TABLE[name];
  if (spec === undefined) {
    const rest = args
      .slice(1, 4)
      .map((a) => `'${String(a)}' `)
      .join("");
    return `ERR unknown command '${String(args[0])}', with args beginning with: ${rest}`;
  }
  const n = args.length;
  if ((spec.arity > 0 && n !== spec.arity) || (spec.arity < 0 && n < -spec.arity)) {
    return `ERR wrong number of arguments for '${name}' command`;
  }
  return undefined;
}

function checkSetOptions(args: RedisArgs): string | undefined {
  let expiry = false;
  let condition = false;
  for (let i = 3; i < args.length; i++) {
    const word = String(args[i]).toLowerCase();
    if (word === "nx" || word === "xx") {
      if (condition) return SYNTAX;
      condition = true;
    } else if (word === "get") {
      continue;
    } else if (word === "keepttl") {
      if (expiry) return SYNTAX;
      expiry = true;
    } else if (word === "ex" || word === "px" || word === "exat" || word === "pxat") {
      if (expiry) return SYNTAX;
      expiry = true;
      const value = args[++i];
      if (value === undefined) return SYNTAX;
      if (!isInteger(String(value))) return NOT_INTEGER;
      if (Number(value) <= 0) return "ERR invalid expire time in 'set' command";
    } else {
      return SYNTAX;
    }
  }
  return undefined;
}

function checkZaddScores(args: RedisArgs): string | undefined {
  let i = 2;
  while (i < args.length && /^(nx|xx|gt|lt|ch|incr)$/i.test(String(args[i]))) i++;
  const pairs = args.slice(i);
  if (pairs.length === 0 || pairs.length % 2 !== 0) return SYNTAX;
  for (let p = 0; p < pairs.length; p += 2) if (!isFloat(String(pairs[p]))) return NOT_FLOAT;
  return undefined;
}

/**
 * Error message for a command that Redis would reject when it runs (wrong key type, bad number, bad
 * option), checked against the current data; undefined when it may run.
 */
export function runTimeError(args: RedisArgs, typeOf: TypeOf, valueOf: ValueOf): string | undefined {
  const name = String(args[0]).toLowerCase();
  const rest = args.slice(1).map(String);
  const expected = expectedType(name);
  if (expected !== undefined) {
    let keys: number[];
    try {
      keys = getKeyIndexes(name, rest);
    } catch {
      keys = [];
    }
    if (DESTINATION_FIRST.has(name)) keys = keys.slice(1);
    for (const k of keys) {
      const key = rest[k];
      if (key === undefined) continue;
      const actual = typeOf(key);
      if (actual !== "none" && actual !== expected) return WRONGTYPE;
    }
  }
  const key = rest[0];
  switch (name) {
    case "set": {
      if (rest.some((a, i) => i >= 2 && a.toLowerCase() === "get")) {
        const t = key === undefined ? "none" : typeOf(key);
        if (t !== "none" && t !== "string") return WRONGTYPE;
      }
      return checkSetOptions(args);
    }
    case "incr":
    case "decr":
    case "incrby":
    case "decrby": {
      if (name.endsWith("by") && !isInteger(rest[1])) return NOT_INTEGER;
      const current = key === undefined ? undefined : valueOf(key);
      if (current !== undefined && !isInteger(current)) return NOT_INTEGER;
      return undefined;
    }
    case "incrbyfloat": {
      if (!isFloat(rest[1])) return NOT_FLOAT;
      const current = key === undefined ? undefined : valueOf(key);
      if (current !== undefined && !isFloat(current)) return NOT_FLOAT;
      return undefined;
    }
    case "hincrby":
    case "hincrbyfloat": {
      const check = name === "hincrby" ? isInteger : isFloat;
      const message = name === "hincrby" ? "ERR hash value is not an integer" : "ERR hash value is not a float";
      if (!check(rest[2])) return name === "hincrby" ? NOT_INTEGER : NOT_FLOAT;
      const current = key === undefined ? undefined : valueOf(key, rest[1]);
      if (current !== undefined && !check(current)) return message;
      return undefined;
    }
    case "zadd":
      return checkZaddScores(args);
    case "zincrby":
      return isFloat(rest[1]) ? undefined : NOT_FLOAT;
    case "expire":
    case "pexpire":
    case "expireat":
    case "pexpireat":
    case "setex":
    case "psetex":
      return isInteger(rest[1]) ? undefined : NOT_INTEGER;
    case "hset":
    case "hmset":
      return rest.length % 2 === 1 ? undefined : `ERR wrong number of arguments for '${name}' command`;
    case "mset":
    case "msetnx":
      return rest.length % 2 === 0 ? undefined : `ERR wrong number of arguments for '${name}' command`;
    default:
      return undefined;
  }
}

const SET_OPTIONS = new Set(["nx", "xx", "get", "keepttl", "ex", "px", "exat", "pxat"]);
const ZADD_OPTIONS = new Set(["nx", "xx", "gt", "lt", "ch", "incr"]);
const XREAD_OPTIONS = new Set(["count", "block", "streams"]);

/**
 * The mock reads some option keywords in upper case only (SET ... ex 10, ZADD k nx ..., XREAD count ...);
 * Redis takes any case and @upstash/redis sends lower case. Upper-cases exactly those keywords, and only
 * where they are keywords (never a member or a value).
 */
export function canonicalOptions(args: RedisArgs): RedisArgs {
  const name = String(args[0]).toLowerCase();
  const upper = (a: string | Buffer) => (typeof a === "string" ? a.toUpperCase() : a);
  if (name === "set") {
    return args.map((a, i) => (i >= 3 && SET_OPTIONS.has(String(a).toLowerCase()) ? upper(a) : a));
  }
  if (name === "zadd" || name === "xread") {
    const options = name === "zadd" ? ZADD_OPTIONS : XREAD_OPTIONS;
    const out = [...args];
    for (let i = name === "zadd" ? 2 : 1; i < out.length; i++) {
      const a = out[i];
      if (a === undefined) break;
      const word = String(a).toLowerCase();
      if (name === "xread" && (word === "count" || word === "block")) {
        out[i] = upper(a);
        i++; // the number after it
        continue;
      }
      if (!options.has(word)) break;
      out[i] = upper(a);
      if (word === "streams") break;
    }
    return out;
  }
  return args;
}
