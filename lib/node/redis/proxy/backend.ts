/**
 * What the proxy needs from a Redis: run commands, batches and transactions, and open subscriptions.
 * Two implementations: a real Redis through ioredis (redis-backend.ts) and the embedded in-memory
 * default (memory-backend.ts).
 */
import type { RedisReplyError } from "./errors.ts";

/** One command as it goes to Redis: the name first, every argument already a string or bytes. */
export type RedisArgs = readonly (string | Buffer)[];

/**
 * A RESP2 reply: bulk and status strings as bytes (binary-safe), integers as numbers, nil as null,
 * arrays as arrays. An error inside an array (from EXEC or Lua) is a RedisReplyError element.
 */
export type RedisReply = null | number | Buffer | RedisReplyError | RedisReply[];

/** One command's outcome in a pipeline or transaction: its reply, or the error Redis answered. */
export type RedisOutcome = { ok: true; reply: RedisReply } | { ok: false; error: RedisReplyError };

export type PubSubEvent =
  | { kind: "subscribe" | "psubscribe"; channel: Buffer; count: number }
  | { kind: "message"; channel: Buffer; message: Buffer }
  | { kind: "pmessage"; pattern: Buffer; channel: Buffer; message: Buffer };

export interface Subscription {
  /** Unsubscribes and frees the subscription's connection. Safe to call twice. */
  close(): Promise<void>;
}

export interface SubscribeRequest {
  mode: "channel" | "pattern";
  targets: readonly string[];
  onEvent: (event: PubSubEvent) => void;
  /** The subscription ended on the backend's side (connection lost for good, backend closed). */
  onEnd: (reason: string) => void;
}

export interface RedisBackend {
  /** Says which backend this is, for logs and start-up banners. */
  readonly label: string;
  readonly kind: "redis" | "memory";
  /** Runs one command. Throws RedisReplyError for an error reply, BackendUnavailableError when Redis cannot be reached. */
  command(args: RedisArgs): Promise<RedisReply>;
  /** Runs commands in order on one connection, not atomically; one outcome per command. */
  pipeline(commands: readonly RedisArgs[]): Promise<RedisOutcome[]>;
  /**
   * Runs commands atomically (MULTI/EXEC) without interleaving with other transactions. Throws
   * RedisReplyError (EXECABORT) when Redis discarded the transaction, e.g. for an unknown command.
   */
  transaction(commands: readonly RedisArgs[]): Promise<RedisOutcome[]>;
  /** Opens a subscription on a connection of its own; resolves once Redis confirmed it. */
  subscribe(request: SubscribeRequest): Promise<Subscription>;
  /** Closes every connection. */
  close(): Promise<void>;
}
