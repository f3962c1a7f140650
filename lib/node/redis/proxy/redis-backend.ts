/**
 * The real-Redis backend, on ioredis. One connection carries all ordinary traffic (commands and
 * pipelines keep their order on it); each transaction borrows a connection of a small pool so that
 * concurrent MULTI/EXEC never interleave; each subscription gets a connection of its own.
 *
 * Failure policy: no offline queue and no retries per request, so while Redis is down a request fails at
 * once with BackendUnavailableError (503) instead of piling up; ioredis reconnects by itself, and every
 * connection has an 'error' listener so that a Redis error never takes the process down.
 */
import { redactUrl } from "../../common/redact.ts";
import { Command, Redis, ReplyError } from "ioredis";
import type { RedisOptions } from "ioredis";
import type { PubSubEvent, RedisArgs, RedisBackend, RedisOutcome, RedisReply, SubscribeRequest, Subscription } from "./backend.ts";
import { BackendUnavailableError, RedisReplyError } from "./errors.ts";

export interface RedisBackendOptions {
  /** redis:// or rediss:// URL. */
  url: string;
  /** Dedicated connections for transactions; more concurrent transactions wait for one. Default 8. */
  transactionConnections?: number;
  /** How long a request waits for the very first connection before answering 503. Default 2000 ms. */
  firstConnectWaitMs?: number;
  /** Where connection trouble is reported (deduplicated). Default: console.error. */
  log?: (line: string) => void;
}

/** A command whose reply ioredis hands over untouched: Buffers, RESP2 arrays (no HGETALL → object). */
class RawCommand extends Command {
  override transformReply(result: Buffer | Buffer[]): Buffer | Buffer[] {
    return result;
  }
}

/** ioredis types ReplyError as any; it is redis-errors' ReplyError, an Error subclass for error replies. */
const ReplyErrorClass = ReplyError as new (message: string) => Error;

function isReplyError(value: unknown): value is Error {
  return value instanceof ReplyErrorClass;
}

/** redis://user:secret@host → redis://user:***@host, for labels and logs. */
export const redactRedisUrl = redactUrl;

/** Converts what the parser produced: nested ReplyErrors (EXEC, Lua) become RedisReplyErrors. */
function toReply(raw: unknown): RedisReply {
  if (raw === null || typeof raw === "number" || Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return raw.map(toReply);
  if (isReplyError(raw)) return new RedisReplyError(raw.message);
  if (typeof raw === "string") return Buffer.from(raw);
  return null;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Resolves when the connection is ready; rejects after waitMs or when it ends. */
function whenReady(conn: Redis, waitMs: number): Promise<void> {
  if (conn.status === "ready") return Promise.resolve();
  if (conn.status === "end") return Promise.reject(new Error("the connection is closed"));
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      conn.off("ready", onReady);
      conn.off("end", onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onEnd = () => done(new Error("the connection is closed"));
    const timer = setTimeout(() => done(new Error(`no connection within ${waitMs} ms`)), waitMs);
    conn.once("ready", onReady);
    conn.once("end", onEnd);
  });
}

export class IoRedisBackend implements RedisBackend {
  readonly kind = "redis" as const;
  readonly label: string;
  private readonly url: string;
  private readonly log: (line: string) => void;
  private readonly main: Redis;
  private readonly firstConnectWaitMs: number;
  private everReady = false;
  private corked = false;
  private closed = false;
  private lastLogged = "";
  private lastLoggedAt = 0;
  private readonly txIdle: Redis[] = [];
  private readonly txAll = new Set<Redis>();
  private readonly txWaiters: ((conn: Redis) => void)[] = [];
  private readonly txMax: number;
  private readonly subscribers = new Set<Redis>();

  constructor(options: RedisBackendOptions) {
    this.url = options.url;
    this.label = `redis at ${redactRedisUrl(options.url)}`;
    this.log = options.log ?? ((line) => console.error(line));
    this.txMax = Math.max(1, options.transactionConnections ?? 8);
    this.firstConnectWaitMs = options.firstConnectWaitMs ?? 2000;
    this.main = this.connect("main");
    this.main.once("ready", () => {
      this.everReady = true;
    });
  }

  private connect(role: string, extra: Partial<RedisOptions> = {}): Redis {
    const conn = new Redis(this.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times) => Math.min(times * 100, 2000),
      connectionName: `workyard-redis-proxy-${role}`,
      ...extra,
    });
    conn.on("error", (err: Error) => this.report(`redis proxy: ${this.label}: ${err.message}`));
    return conn;
  }

  /** Logs connection trouble, once per distinct message per 30 s, so a Redis outage does not flood the log. */
  private report(line: string): void {
    const now = Date.now();
    if (line === this.lastLogged && now - this.lastLoggedAt < 30_000) return;
    this.lastLogged = line;
    this.lastLoggedAt = now;
    this.log(line);
  }

  private unavailable(err: unknown): BackendUnavailableError {
    return new BackendUnavailableError(`ERR Redis (${this.label}) is not reachable: ${errorMessage(err)}`, { cause: err });
  }

  private classify(err: unknown): Error {
    if (isReplyError(err)) return new RedisReplyError(err.message);
    return this.unavailable(err);
  }

  /** Waits for the first connection at start-up; afterwards, fails fast while Redis is away. */
  private async ensureMain(): Promise<void> {
    if (this.closed) throw this.unavailable(new Error("the backend is closed"));
    if (this.main.status === "ready") return;
    if (this.everReady) throw this.unavailable(new Error(`connection ${this.main.status}`));
    try {
      await whenReady(this.main, this.firstConnectWaitMs);
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /**
   * Writes a command. Writes made in the same turn of the event loop are corked into one socket write,
   * which is what makes many small concurrent requests cheap.
   */
  private send(conn: Redis, args: RedisArgs): Promise<unknown> {
    if (conn === this.main && !this.corked && conn.status === "ready") {
      const stream = conn.stream;
      stream.cork();
      this.corked = true;
      setImmediate(() => {
        this.corked = false;
        stream.uncork();
      });
    }
    const [name, ...rest] = args;
    const cmd = new RawCommand(String(name).toLowerCase(), rest, { replyEncoding: null });
    conn.sendCommand(cmd);
    return cmd.promise;
  }

  async command(args: RedisArgs): Promise<RedisReply> {
    await this.ensureMain();
    try {
      return toReply(await this.send(this.main, args));
    } catch (err) {
      throw this.classify(err);
    }
  }

  async pipeline(commands: readonly RedisArgs[]): Promise<RedisOutcome[]> {
    await this.ensureMain();
    const settled = await Promise.allSettled(commands.map((c) => this.send(this.main, c)));
    const outcomes: RedisOutcome[] = [];
    let unreachable = 0;
    for (const s of settled) {
      if (s.status === "fulfilled") {
        outcomes.push({ ok: true, reply: toReply(s.value) });
        continue;
      }
      const err = this.classify(s.reason);
      if (err instanceof BackendUnavailableError) unreachable++;
      outcomes.push({ ok: false, error: new RedisReplyError(err.message) });
    }
    // Nothing ran: answer 503 like a single command. Some ran: report each command's fate.
    if (unreachable === commands.length) throw this.unavailable(settled.find((s) => s.status === "rejected")?.reason);
    return outcomes;
  }

  private async borrow(): Promise<Redis> {
    const idle = this.txIdle.pop();
    if (idle) return idle;
    if (this.txAll.size < this.txMax) {
      const conn = this.connect("multi");
      this.txAll.add(conn);
      conn.once("end", () => this.txAll.delete(conn));
      return conn;
    }
    return new Promise((resolve) => this.txWaiters.push(resolve));
  }

  private giveBack(conn: Redis, healthy: boolean): void {
    if (!healthy || this.closed) {
      this.txAll.delete(conn);
      conn.disconnect();
      if (!this.closed && this.txWaiters.length > 0) void this.borrow().then((c) => this.giveBack(c, true));
      return;
    }
    const waiter = this.txWaiters.shift();
    if (waiter) waiter(conn);
    else this.txIdle.push(conn);
  }

  async transaction(commands: readonly RedisArgs[]): Promise<RedisOutcome[]> {
    await this.ensureMain();
    const conn = await this.borrow();
    let healthy = true;
    try {
      try {
        await whenReady(conn, this.firstConnectWaitMs);
      } catch (err) {
        healthy = false;
        throw this.unavailable(err);
      }
      // MULTI, the commands and EXEC go out in one write; nothing else uses this connection meanwhile.
      conn.stream.cork();
      const multi = this.send(conn, ["multi"]);
      const queued = commands.map((c) => this.send(conn, c));
      const exec = this.send(conn, ["exec"]);
      conn.stream.uncork();
      const [multiDone, execDone, ...queuedDone] = await Promise.allSettled([multi, exec, ...queued]);
      for (const s of [multiDone, execDone, ...queuedDone]) {
        if (s?.status === "rejected" && !isReplyError(s.reason)) {
          healthy = false;
          throw this.unavailable(s.reason);
        }
      }
      if (execDone?.status === "rejected") {
        const i = queuedDone.findIndex((s) => s.status === "rejected");
        const first = queuedDone[i];
        const why =
          first?.status === "rejected" ? `: command ${i} (${String(commands[i]?.[0]).toUpperCase()}): ${errorMessage(first.reason)}` : "";
        throw new RedisReplyError(`${errorMessage(execDone.reason)}${why}`);
      }
      const results = execDone?.status === "fulfilled" ? toReply(execDone.value) : null;
      if (!Array.isArray(results)) throw new RedisReplyError("ERR the transaction returned no results");
      return results.map((r) => (r instanceof RedisReplyError ? { ok: false, error: r } : { ok: true, reply: r }));
    } finally {
      this.giveBack(conn, healthy);
    }
  }

  async subscribe(request: SubscribeRequest): Promise<Subscription> {
    await this.ensureMain(); // while Redis is away, fail at once rather than after a connect timeout
    const conn = this.connect(request.mode === "pattern" ? "psubscribe" : "subscribe", { autoResubscribe: false });
    this.subscribers.add(conn);
    let ended = false;
    const close = async () => {
      if (ended) return;
      ended = true;
      this.subscribers.delete(conn);
      conn.disconnect();
    };
    try {
      await whenReady(conn, this.firstConnectWaitMs);
      conn.on("messageBuffer", (channel: Buffer, message: Buffer) => request.onEvent({ kind: "message", channel, message }));
      conn.on("pmessageBuffer", (pattern: string | Buffer, channel: Buffer, message: Buffer) =>
        request.onEvent({ kind: "pmessage", pattern: Buffer.from(pattern), channel, message }),
      );
      const kind: PubSubEvent["kind"] = request.mode === "pattern" ? "psubscribe" : "subscribe";
      for (const target of request.targets) {
        const count = Number(request.mode === "pattern" ? await conn.psubscribe(target) : await conn.subscribe(target));
        request.onEvent({ kind, channel: Buffer.from(target), count });
      }
    } catch (err) {
      await close();
      throw isReplyError(err) ? new RedisReplyError(err.message) : this.unavailable(err);
    }
    // A lost connection ends the stream: messages published meanwhile are gone, and the client should know.
    conn.once("close", () => {
      if (ended) return;
      void close();
      request.onEnd("the connection to Redis was lost");
    });
    return { close };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const conn of [this.main, ...this.txAll, ...this.subscribers]) conn.disconnect();
    this.txAll.clear();
    this.txIdle.length = 0;
    this.subscribers.clear();
  }
}
