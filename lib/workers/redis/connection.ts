/**
 * One RESP connection to Redis over workerd's `connect()` (cloudflare:sockets), shared by every request of a workerd
 * process through the Redis object that holds it (object.ts). Redis answers a connection's commands in the order
 * they were written, so each write leaves one entry in a FIFO of pending replies, and each reply settles the entry at
 * its head.
 *
 * What keeps the order safe:
 * - A write (one command, a pipeline, or MULTI...EXEC with its commands) goes out as one `write()`: nothing another
 *   request sends can land in the middle of a transaction.
 * - A command that gets no reply within `timeoutMs` closes the connection and fails everything pending on it: a
 *   late reply can never be taken for the next command's. The same for a write that fails, bytes that are not RESP,
 *   or Redis closing the connection.
 * - No offline queue: while Redis cannot be reached a command fails at once (as the proxy answers 503), and the next
 *   command after a short backoff tries to connect again (100 ms doubling to 2 s while connecting fails; at once
 *   after a connection that worked was lost).
 * A command that was written before the connection was lost may or may not have run: its caller gets an error
 * either way (as with the proxy).
 */
import { connect } from "cloudflare:sockets";
import { encodeCommands, replyReader } from "./resp.ts";
import type { Reply, ReplyReader } from "./resp.ts";

/** Redis cannot be reached right now, or the connection was lost with this command on it. */
export class RedisUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RedisUnavailableError";
  }
}

export interface ConnectionOptions {
  /** redis://[user[:password]@]host[:port][/db], or rediss:// for TLS. */
  url: string;
  /** How long a command may wait for its reply; then the connection is closed. */
  timeoutMs: number;
  /** The name Redis lists the connection under (CLIENT SETNAME). */
  clientName: string;
  /** Where connection trouble is reported. */
  log: (line: string) => void;
}

/** Where and how to connect, from the URL. */
export interface RedisTarget {
  hostname: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  db: number;
}

/** Reads a redis:// or rediss:// URL; throws with what is wrong. */
export function redisTarget(url: string): RedisTarget {
  const u = new URL(url);
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(`the Redis URL must start with redis:// or rediss://, not ${u.protocol}//`);
  }
  const path = u.pathname.replace(/^\//, "");
  const db = path === "" ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0) throw new Error(`the Redis URL's path must be a database number (/0, /1 ...), not /${path}`);
  const username = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  return {
    hostname: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: u.port === "" ? 6379 : Number(u.port),
    tls: u.protocol === "rediss:",
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    db,
  };
}

/**
 * The commands that set a new connection up: AUTH, SELECT, and last a name to find it by in CLIENT LIST (a Redis that
 * refuses CLIENT to this user still answers it, which is all the handshake needs from it).
 */
function handshake(target: RedisTarget, clientName: string): string[][] {
  const commands: string[][] = [];
  if (target.password !== undefined) {
    commands.push(target.username !== undefined ? ["AUTH", target.username, target.password] : ["AUTH", target.password]);
  }
  if (target.db !== 0) commands.push(["SELECT", String(target.db)]);
  commands.push(["CLIENT", "SETNAME", clientName]);
  return commands;
}

interface Pending {
  /** Replies this write waits for, and those it has. */
  count: number;
  replies: Reply[];
  /** Date.now() past which the connection is given up. */
  deadline: number;
  resolve(replies: Reply[]): void;
  reject(error: Error): void;
}

/** One socket and the replies it owes. */
class Live {
  readonly pending: Pending[] = [];
  readonly reader: ReplyReader;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  closed = false;
  /** Armed while replies are pending: checks the head's deadline. */
  timer: ReturnType<typeof setTimeout> | undefined;

  readonly socket: Socket;

  constructor(socket: Socket, onFatal: (error: Error) => void) {
    this.socket = socket;
    this.writer = socket.writable.getWriter();
    this.reader = replyReader((reply) => this.deliver(reply, onFatal), onFatal);
  }

  private deliver(reply: Reply, onFatal: (error: Error) => void): void {
    const head = this.pending[0];
    if (!head) {
      onFatal(new Error("Redis sent a reply nobody was waiting for"));
      return;
    }
    head.replies.push(reply);
    if (head.replies.length < head.count) return;
    this.pending.shift();
    head.resolve(head.replies);
  }
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

export class RespConnection {
  readonly #target: RedisTarget;
  readonly #options: ConnectionOptions;
  #live: Live | undefined;
  #opening: Promise<Live> | undefined;
  /** Failed attempts to connect in a row, and when the next may start. */
  #failures = 0;
  #retryAt = 0;
  #lastError = "";

  constructor(options: ConnectionOptions) {
    this.#options = options;
    this.#target = redisTarget(options.url);
  }

  /**
   * Writes `commands` in one write and resolves with one reply per command, in order (an error reply is an Error
   * element). Rejects with RedisUnavailableError when there is no connection, or it is lost before every reply came.
   */
  async send(commands: readonly (readonly string[])[]): Promise<Reply[]> {
    // A connection lost is never written to again, even one lost before it was kept: the next command connects anew.
    const live = this.#live && !this.#live.closed ? this.#live : await this.#open();
    return this.#write(live, commands);
  }

  /** Closes the connection; pending commands fail. */
  close(): void {
    if (this.#live) this.#drop(this.#live, new Error("the connection was closed"));
  }

  #write(live: Live, commands: readonly (readonly string[])[]): Promise<Reply[]> {
    if (live.closed) return Promise.reject(new RedisUnavailableError(`the connection to Redis was lost: ${this.#lastError}`));
    const bytes = encodeCommands(commands);
    const replies = new Promise<Reply[]>((resolve, reject) => {
      live.pending.push({ count: commands.length, replies: [], deadline: Date.now() + this.#options.timeoutMs, resolve, reject });
    });
    if (live.timer === undefined) this.#arm(live, this.#options.timeoutMs);
    live.writer.write(bytes).catch((err: unknown) => this.#drop(live, err));
    return replies;
  }

  /** Checks the oldest pending write's deadline in `ms`; past it, the connection goes. */
  #arm(live: Live, ms: number): void {
    live.timer = setTimeout(() => {
      live.timer = undefined;
      const head = live.pending[0];
      if (live.closed || !head) return;
      const left = head.deadline - Date.now();
      if (left > 0) this.#arm(live, left);
      else
        this.#drop(
          live,
          new Error(`no reply within ${this.#options.timeoutMs} ms (the connection was closed, and every command on it failed)`),
        );
    }, ms);
  }

  #open(): Promise<Live> {
    if (this.#opening) return this.#opening;
    const wait = this.#retryAt - Date.now();
    if (this.#failures > 0 && wait > 0) {
      return Promise.reject(new RedisUnavailableError(`${this.#lastError} (trying again in ${wait} ms)`));
    }
    const opening = this.#connect().then(
      (live) => {
        this.#opening = undefined;
        this.#failures = 0;
        this.#live = live;
        return live;
      },
      (err: unknown) => {
        // Once per outage: the first failed attempt after a working connection (or at start), not every retry.
        if (this.#failures === 0) {
          this.#options.log(`redis object: cannot connect to ${this.#target.hostname}:${this.#target.port}: ${messageOf(err)}`);
        }
        this.#failures++;
        this.#retryAt = Date.now() + Math.min(MIN_BACKOFF_MS * 2 ** (this.#failures - 1), MAX_BACKOFF_MS);
        this.#opening = undefined;
        throw err instanceof RedisUnavailableError ? err : new RedisUnavailableError(messageOf(err), { cause: err });
      },
    );
    this.#opening = opening;
    return opening;
  }

  async #connect(): Promise<Live> {
    const { hostname, port, tls } = this.#target;
    const socket = connect({ hostname, port }, { secureTransport: tls ? "on" : "off", allowHalfOpen: false });
    const live = new Live(socket, (err) => this.#drop(live, err));
    void this.#read(live);
    // The handshake's replies say whether the connection works (refused, wrong password, no such database, too many
    // clients), less the refusals that leave it working, as ioredis (the proxy's client) takes them.
    const commands = handshake(this.#target, this.#options.clientName);
    const replies = await this.#write(live, commands);
    const failed = replies.find((r, i): r is Error => r instanceof Error && !harmless(commands[i]?.[0] ?? "", r, this.#options.log));
    if (failed || live.closed) {
      const why = `Redis refused the connection's set-up: ${failed?.message ?? this.#lastError}`;
      this.#drop(live, new Error(why));
      throw new RedisUnavailableError(why);
    }
    return live;
  }

  async #read(live: Live): Promise<void> {
    const reader = live.socket.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!live.closed) live.reader.feed(value as Uint8Array);
      }
      this.#drop(live, new Error("Redis closed the connection"));
    } catch (err) {
      this.#drop(live, err);
    }
  }

  /** Closes `live` for good and fails what is pending on it; the next command connects again. */
  #drop(live: Live, reason: unknown): void {
    if (live.closed) return;
    live.closed = true;
    if (live.timer !== undefined) clearTimeout(live.timer);
    live.timer = undefined;
    const message = messageOf(reason);
    this.#lastError = message;
    if (this.#live === live) {
      this.#live = undefined;
      this.#options.log(`redis object: connection to ${this.#target.hostname}:${this.#target.port} lost: ${message}`);
    }
    live.socket.close().catch(() => {});
    const error = new RedisUnavailableError(message, { cause: reason });
    for (const p of live.pending.splice(0)) p.reject(error);
  }
}

/**
 * A set-up reply that is an error, but leaves the connection usable: a password given to a Redis that has none (ioredis
 * warns and goes on), and CLIENT SETNAME refused to a user without the right, or by a Redis without the command.
 */
function harmless(command: string, reply: Error, log: (line: string) => void): boolean {
  if (command === "AUTH" && /without any password configured/i.test(reply.message)) {
    log(`redis object: the Redis URL has a password, but Redis has none (${reply.message}); going on without`);
    return true;
  }
  return command === "CLIENT" && /^(NOPERM|ERR unknown (sub)?command)/i.test(reply.message);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
