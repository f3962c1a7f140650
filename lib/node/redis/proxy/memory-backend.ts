/**
 * The embedded default when no REDIS_URL is configured: ioredis-mock (a maintained in-memory emulation
 * of Redis, Lua through fengari included), behind the checks Redis does and the mock does not
 * (memory-checks.ts), with SCRIPT LOAD/EXISTS/FLUSH and EVALSHA added and its replies reshaped to RESP2.
 * One process only, keys are text (binary keys are not preserved; values are). Given a snapshot file (`npm start`:
 * .workyard/redis-memory.json), its keys outlive the process: restored before the proxy serves, saved when it stops
 * and, while it runs, every 30 s when a command that may write ran since the last save, so a crash (kill -9) loses at
 * most that much (memory-snapshot.ts has the format). Scripts (SCRIPT LOAD) are not kept, as in Redis: clients fall
 * back from EVALSHA to EVAL. Without a file (`npm run dev`, tests), nothing is kept.
 *
 * The mock runs each command synchronously when called, so commands issued back to back without an
 * await in between cannot interleave with other requests: that is what makes pipelines ordered and
 * transactions atomic here.
 */
import { createHash, randomUUID } from "node:crypto";
import { rename } from "node:fs/promises";
import RedisMock from "ioredis-mock";
import type { PubSubEvent, RedisArgs, RedisBackend, RedisOutcome, RedisReply, SubscribeRequest, Subscription } from "./backend.ts";
import { RedisReplyError } from "./errors.ts";
import { NOT_INTEGER, canonicalOptions, mayWrite, queueTimeError, runTimeError } from "./memory-checks.ts";
import type { KeyType } from "./memory-checks.ts";
import { decodeSnapshot, encodeSnapshot, fromBytes, readSnapshotText, toBytes, writeSnapshotText } from "./memory-snapshot.ts";
import type { Bytes, SnapshotEntry } from "./memory-snapshot.ts";

/** The label of an in-memory backend that keeps nothing across restarts. */
export const MEMORY_LABEL = "in-memory (embedded default, not persistent)";
/** How often a running backend saves its snapshot when something may have changed. */
export const SNAPSHOT_INTERVAL_MS = 30_000;

export interface MemoryBackendOptions {
  /** Where the keys are kept across restarts; absent: nowhere (MEMORY_LABEL). */
  snapshotFile?: string;
  /** How often a changed store is saved while running; default SNAPSHOT_INTERVAL_MS. */
  snapshotIntervalMs?: number;
  log?: (line: string) => void;
}

type MockMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * The part of ioredis-mock this backend uses. Its published types claim a full ioredis client, which
 * it is not (no call/sendCommand); commands are reached by name.
 */
interface MockClient {
  data: { get(key: string): unknown; has(key: string): boolean; keys(): string[] };
  /** Deadlines in Unix ms. */
  expires: { get(key: string): number | undefined };
  duplicate(): MockClient;
  disconnect(): void;
  on(event: "message" | "messageBuffer", listener: (channel: string | Buffer, message: string | Buffer) => void): unknown;
  on(
    event: "pmessage" | "pmessageBuffer",
    listener: (pattern: string | Buffer, channel: string | Buffer, message: string | Buffer) => void,
  ): unknown;
  subscribe(channel: string): Promise<unknown>;
  psubscribe(pattern: string): Promise<unknown>;
  unsubscribe(): Promise<unknown>;
  punsubscribe(): Promise<unknown>;
  flushall(): Promise<unknown>;
}

function sha1(text: string): string {
  return createHash("sha1").update(text, "utf8").digest("hex");
}

function asBuffer(value: string | Buffer): Buffer {
  return typeof value === "string" ? Buffer.from(value) : value;
}

/**
 * Arguments as the mock gets them: text as strings (the mock compares set members and hash fields as
 * strings), bytes that are not UTF-8 as Buffers so that binary values survive.
 */
function mockArgs(args: RedisArgs): (string | Buffer)[] {
  return args.slice(1).map((a) => {
    if (typeof a === "string") return a;
    const text = a.toString("utf8");
    return Buffer.byteLength(text) === a.length && Buffer.from(text).equals(a) ? text : a;
  });
}

/** The mock's replies in RESP2 shape: strings as bytes, hashes and maps as flat arrays, no undefined. */
function normalize(raw: unknown): RedisReply {
  if (raw === null || raw === undefined) return null;
  if (Buffer.isBuffer(raw)) return raw;
  if (typeof raw === "string") return Buffer.from(raw);
  if (typeof raw === "boolean") return raw ? 1 : 0;
  if (typeof raw === "number") {
    if (Number.isNaN(raw)) throw new RedisReplyError(NOT_INTEGER);
    // Redis answers non-integers (INCRBYFLOAT, scores) as bulk strings.
    return Number.isInteger(raw) ? raw : Buffer.from(String(raw));
  }
  if (Array.isArray(raw)) return raw.map(normalize);
  if (raw instanceof Set) return [...raw].map(normalize);
  if (raw instanceof Map) return [...raw].flatMap(([k, v]) => [normalize(k), normalize(v)]);
  if (raw instanceof Error) return new RedisReplyError(raw.message);
  if (typeof raw === "object") return Object.entries(raw).flatMap(([k, v]) => [Buffer.from(k), normalize(v)]);
  return null;
}

/** Lua values as Redis converts them: numbers truncated to integers, true → 1, false → nil. */
function normalizeLua(raw: unknown): RedisReply {
  if (raw === false) return null;
  if (raw === true) return 1;
  if (typeof raw === "number") return Number.isFinite(raw) ? Math.trunc(raw) : null;
  if (Array.isArray(raw)) return raw.map(normalizeLua);
  return normalize(raw);
}

/** A stored value as the snapshot keeps it; undefined for what it cannot keep (the mock's streams). */
function entryOf(key: string, v: unknown, expiresAt: number | undefined): SnapshotEntry | undefined {
  const bytes = (x: unknown): x is string | Buffer | number => typeof x === "string" || typeof x === "number" || Buffer.isBuffer(x);
  const deadline = expiresAt === undefined ? {} : { expiresAt };
  if (bytes(v)) return { key, type: "string", value: toBytes(v), ...deadline };
  if (Array.isArray(v)) return v.every(bytes) ? { key, type: "list", value: v.map(toBytes), ...deadline } : undefined;
  if (v instanceof Set) return [...v].every(bytes) ? { key, type: "set", value: [...v].map(toBytes), ...deadline } : undefined;
  if (v instanceof Map) {
    const value: [Bytes, string][] = [];
    for (const [member, entry] of v as Map<unknown, unknown>) {
      const score = typeof entry === "object" && entry !== null ? (entry as { score?: unknown }).score : undefined;
      if (!bytes(member) || typeof score !== "number") return undefined;
      value.push([toBytes(member), String(score)]);
    }
    return { key, type: "zset", value, ...deadline };
  }
  if (typeof v === "object" && v !== null) {
    const fields = Object.entries(v);
    return fields.every(([, x]) => bytes(x))
      ? { key, type: "hash", value: fields.map(([f, x]) => [f, toBytes(x as string | Buffer | number)]), ...deadline }
      : undefined;
  }
  return undefined;
}

/** A long collection goes in with several commands: one call with every element would overflow the argument limit. */
const CHUNK = 1000;
function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** The commands that write one snapshot entry back (its key first, added by the caller), large values in chunks. */
function loadCommands(entry: SnapshotEntry): [string, (string | Buffer)[]][] {
  switch (entry.type) {
    case "string":
      return [["set", [fromBytes(entry.value)]]];
    case "hash":
      return chunks(entry.value).map((part) => ["hset", part.flatMap(([f, v]) => [f, fromBytes(v)])]);
    case "list":
      return chunks(entry.value).map((part) => ["rpush", part.map(fromBytes)]);
    case "set":
      return chunks(entry.value).map((part) => ["sadd", part.map(fromBytes)]);
    case "zset":
      return chunks(entry.value).map((part) => ["zadd", part.flatMap(([m, score]) => [score, fromBytes(m)])]);
  }
}

export class MemoryBackend implements RedisBackend {
  readonly kind = "memory" as const;
  readonly label: string;
  private readonly mock: MockClient;
  private readonly scripts = new Map<string, string>();
  private readonly subscribers = new Set<MockClient>();
  private readonly snapshotFile: string | undefined;
  private readonly snapshotIntervalMs: number;
  private readonly log: (line: string) => void;
  /** Counts commands that may have written; a save records the count it saw. */
  private writes = 0;
  private savedWrites = 0;
  private saving: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastSaveError: string | undefined;
  private leftOutReported = 0;

  constructor({ snapshotFile, snapshotIntervalMs = SNAPSHOT_INTERVAL_MS, log = () => {} }: MemoryBackendOptions = {}) {
    // The mock shares data between instances with the same host:port; a unique host keeps backends apart.
    this.mock = new RedisMock({ host: `workyard-memory-${randomUUID()}`, port: 6379 }) as unknown as MockClient;
    this.snapshotFile = snapshotFile;
    this.snapshotIntervalMs = snapshotIntervalMs;
    this.log = log;
    this.label =
      snapshotFile === undefined
        ? MEMORY_LABEL
        : `in-memory (embedded default, saved in ${snapshotFile} at stop and every ${snapshotIntervalMs / 1000} s)`;
  }

  /**
   * Loads the snapshot file, if any, and starts saving it periodically; call once, before serving. A snapshot that
   * cannot be read is reported in one line and moved aside (`.unreadable`), and the backend starts empty.
   */
  async restore(): Promise<void> {
    const file = this.snapshotFile;
    if (file === undefined) return;
    try {
      const text = await readSnapshotText(file);
      if (text !== undefined) {
        const { keys, expired } = decodeSnapshot(text);
        await this.load(keys);
        this.log(
          `restored ${keys.length} key${keys.length === 1 ? "" : "s"} from ${file}${expired ? ` (${expired} expired while stopped)` : ""}`,
        );
      }
    } catch (err) {
      await this.mock.flushall();
      const aside = `${file}.unreadable`;
      const moved = await rename(file, aside).then(
        () => true,
        () => false,
      );
      this.log(
        `could not restore the Redis snapshot ${file}: ${(err as Error).message}; starting empty${moved ? ` (the file is now ${aside})` : ""}`,
      );
    }
    this.timer = setInterval(() => void this.save(), this.snapshotIntervalMs);
    this.timer.unref();
  }

  /** Puts snapshot entries into the empty store, through the commands a client would use. */
  private async load(keys: readonly SnapshotEntry[]): Promise<void> {
    for (const entry of keys) {
      // Redis has no empty hash, list, set or sorted set (a hand-edited file may): such a key is not created.
      if (entry.type !== "string" && entry.value.length === 0) continue;
      for (const [name, args] of loadCommands(entry)) await this.method(name)(entry.key, ...args);
      if (entry.expiresAt !== undefined) await this.method("pexpireat")(entry.key, String(entry.expiresAt));
    }
  }

  /** Every live key as a snapshot entry, read at one instant (the mock runs nothing while this runs). */
  private entries(): { keys: SnapshotEntry[]; leftOut: number } {
    const keys: SnapshotEntry[] = [];
    let leftOut = 0;
    for (const key of this.mock.data.keys()) {
      const value = this.mock.data.get(key);
      if (value === undefined) continue; // expired just now
      const entry = entryOf(key, value, this.mock.expires.get(key));
      if (entry) keys.push(entry);
      else leftOut++;
    }
    return { keys, leftOut };
  }

  /** Writes the snapshot when a command that may write ran since the last one; saves never overlap, never throw. */
  private save(): Promise<void> {
    this.saving = this.saving.then(async () => {
      const file = this.snapshotFile;
      if (file === undefined || this.writes === this.savedWrites) return;
      const seen = this.writes;
      try {
        const { keys, leftOut } = this.entries();
        if (leftOut > 0 && leftOut !== this.leftOutReported) {
          // The mock's streams (and the bookkeeping key it keeps per stream entry).
          this.log(`the Redis snapshot leaves out ${leftOut} key${leftOut === 1 ? "" : "s"} of a kind it cannot keep (streams)`);
        }
        this.leftOutReported = leftOut;
        await writeSnapshotText(file, encodeSnapshot(keys));
        this.savedWrites = seen;
        this.lastSaveError = undefined;
      } catch (err) {
        const message = (err as Error).message;
        // Said once, not at every interval while the disk stays full.
        if (message !== this.lastSaveError) this.log(`could not save the Redis snapshot ${file}: ${message}`);
        this.lastSaveError = message;
      }
    });
    return this.saving;
  }

  private typeOf = (key: string): KeyType => {
    if (!this.mock.data.has(key)) return "none";
    const v = this.mock.data.get(key);
    if (v instanceof Set) return "set";
    if (v instanceof Map) return "zset";
    if (Array.isArray(v)) return "list";
    if (Buffer.isBuffer(v) || typeof v === "string" || typeof v === "number") return "string";
    if (typeof v === "object" && v !== null) return "hash";
    return "other";
  };

  private valueOf = (key: string, field?: string): string | undefined => {
    if (!this.mock.data.has(key)) return undefined;
    let v: unknown = this.mock.data.get(key);
    if (field !== undefined) v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[field] : undefined;
    if (Buffer.isBuffer(v) || typeof v === "string" || typeof v === "number") return v.toString();
    return undefined;
  };

  /** A stored string as bytes, undefined when the key holds none. */
  private rawString(key: string): Buffer | undefined {
    if (!this.mock.data.has(key)) return undefined;
    const v = this.mock.data.get(key);
    if (Buffer.isBuffer(v)) return v;
    if (typeof v === "string" || typeof v === "number") return Buffer.from(String(v));
    return undefined;
  }

  private byteLength(key: string): number {
    return this.rawString(key)?.length ?? 0;
  }

  private method(name: string): MockMethod {
    const target = this.mock as unknown as Record<string, unknown>;
    const fn = target[`${name}Buffer`] ?? target[name];
    if (typeof fn !== "function" || name.includes(".")) {
      throw new RedisReplyError(`ERR ${name.toUpperCase()} is not supported by the in-memory backend: set REDIS_URL to use a real Redis`);
    }
    return (fn as MockMethod).bind(this.mock);
  }

  private toReplyError(err: unknown, name: string): RedisReplyError {
    if (err instanceof RedisReplyError) return err;
    const message = err instanceof Error ? err.message : String(err);
    if (message.startsWith("Unsupported command")) {
      return new RedisReplyError(`ERR ${name.toUpperCase()} is not supported by the in-memory backend: set REDIS_URL to use a real Redis`);
    }
    return new RedisReplyError(/^[A-Z]+ /.test(message) ? message : `ERR ${message}`);
  }

  private evalScript(script: string, rest: readonly string[]): Promise<RedisReply> {
    this.scripts.set(sha1(script), script);
    return this.method("eval")(script, ...rest).then(normalizeLua);
  }

  private script(rest: readonly string[]): RedisReply {
    const sub = (rest[0] ?? "").toLowerCase();
    if (sub === "load" && rest.length === 2) {
      const script = rest[1] ?? "";
      const sha = sha1(script);
      this.scripts.set(sha, script);
      return Buffer.from(sha);
    }
    if (sub === "exists" && rest.length >= 2) return rest.slice(1).map((sha) => (this.scripts.has(sha.toLowerCase()) ? 1 : 0));
    if (sub === "flush") {
      this.scripts.clear();
      return Buffer.from("OK");
    }
    throw new RedisReplyError(
      `ERR SCRIPT ${sub.toUpperCase()} is not supported by the in-memory backend, or has the wrong number of arguments`,
    );
  }

  /** Runs one command now (synchronously inside the mock); the promise carries its reply. */
  private run(args: RedisArgs): Promise<RedisReply> {
    const name = String(args[0]).toLowerCase();
    if (mayWrite(name)) this.writes++;
    try {
      const problem = queueTimeError(args) ?? runTimeError(args, this.typeOf, this.valueOf);
      if (problem !== undefined) throw new RedisReplyError(problem);
      const rest = args.slice(1).map(String);
      let pending: Promise<RedisReply>;
      if (name === "strlen") {
        // The mock counts UTF-16 units; Redis counts bytes.
        pending = Promise.resolve(this.byteLength(rest[0] ?? ""));
      } else if (name === "set" && rest.slice(2).some((a) => a.toLowerCase() === "get")) {
        // The mock answers OK to SET ... GET; Redis answers the old value.
        const old = this.rawString(rest[0] ?? "");
        pending = this.method(name)(...mockArgs(canonicalOptions(args))).then(() => (old === undefined ? null : old));
      } else if (name === "eval" || name === "eval_ro") {
        pending = this.evalScript(rest[0] ?? "", rest.slice(1));
      } else if (name === "evalsha" || name === "evalsha_ro") {
        const script = this.scripts.get((rest[0] ?? "").toLowerCase());
        if (script === undefined) throw new RedisReplyError("NOSCRIPT No matching script. Please use EVAL.");
        pending = this.evalScript(script, rest.slice(1));
      } else if (name === "script") {
        pending = Promise.resolve(this.script(rest));
      } else {
        pending = this.method(name)(...mockArgs(canonicalOptions(args))).then(normalize);
      }
      return pending.catch((err: unknown) => {
        throw this.toReplyError(err, name);
      });
    } catch (err) {
      return Promise.reject(this.toReplyError(err, name));
    }
  }

  command(args: RedisArgs): Promise<RedisReply> {
    return this.run(args);
  }

  private async settle(commands: readonly RedisArgs[]): Promise<RedisOutcome[]> {
    // All commands start before the first await: nothing else runs between them.
    const settled = await Promise.allSettled(commands.map((c) => this.run(c)));
    return settled.map((s, i) =>
      s.status === "fulfilled" ? { ok: true, reply: s.value } : { ok: false, error: this.toReplyError(s.reason, String(commands[i]?.[0])) },
    );
  }

  pipeline(commands: readonly RedisArgs[]): Promise<RedisOutcome[]> {
    return this.settle(commands);
  }

  async transaction(commands: readonly RedisArgs[]): Promise<RedisOutcome[]> {
    // Like Redis: unknown commands and wrong argument counts discard the whole transaction.
    for (let i = 0; i < commands.length; i++) {
      const cmd = commands[i] ?? [];
      const problem = queueTimeError(cmd);
      if (problem !== undefined) {
        throw new RedisReplyError(
          `EXECABORT Transaction discarded because of previous errors: command ${i} (${String(cmd[0]).toUpperCase()}): ${problem}`,
        );
      }
    }
    return this.settle(commands);
  }

  async subscribe(request: SubscribeRequest): Promise<Subscription> {
    const sub = this.mock.duplicate();
    this.subscribers.add(sub);
    // The mock emits the Buffer events only for Buffer messages and the string events otherwise.
    const onMessage = (channel: string | Buffer, message: string | Buffer) =>
      request.onEvent({ kind: "message", channel: asBuffer(channel), message: asBuffer(message) });
    const onPmessage = (pattern: string | Buffer, channel: string | Buffer, message: string | Buffer) =>
      request.onEvent({ kind: "pmessage", pattern: asBuffer(pattern), channel: asBuffer(channel), message: asBuffer(message) });
    sub.on("message", onMessage);
    sub.on("messageBuffer", onMessage);
    sub.on("pmessage", onPmessage);
    sub.on("pmessageBuffer", onPmessage);
    const kind: PubSubEvent["kind"] = request.mode === "pattern" ? "psubscribe" : "subscribe";
    for (const target of request.targets) {
      const count = Number(request.mode === "pattern" ? await sub.psubscribe(target) : await sub.subscribe(target));
      request.onEvent({ kind, channel: Buffer.from(target), count });
    }
    let closed = false;
    return {
      close: async () => {
        if (closed) return;
        closed = true;
        this.subscribers.delete(sub);
        await sub.unsubscribe();
        await sub.punsubscribe();
        sub.disconnect();
      },
    };
  }

  /** Saves the snapshot (when there is a file), then empties the store and closes every connection. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.save();
    for (const sub of this.subscribers) sub.disconnect();
    this.subscribers.clear();
    await this.mock.flushall();
    this.mock.disconnect();
  }
}
