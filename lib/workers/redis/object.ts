/**
 * The Redis object: a Durable Object of the internal worker, one per workerd process (never evicted, nothing
 * stored), holding one RESP connection to REDIS_URL (connection.ts). Functions that declare the Upstash secrets
 * reach it by JS RPC from `redis(c)` (lib/sdk/redis.ts) instead of sending each command over HTTP to the Redis
 * proxy: same commands, same answers, without the proxy process and the loopback HTTP request per command.
 *
 * Each method takes the body @upstash/redis would POST to the proxy's /, /pipeline or /multi-exec and answers what
 * the proxy would: the same refusals (lib/shared/redis-commands.ts), the same request errors
 * (lib/shared/redis-protocol.ts), and the same statuses (400 for an error reply, 503 while Redis is away).
 * A Durable Object's I/O belongs to the object, so the connection outlives the request that opened it, which a plain
 * worker cannot do ("Cannot perform I/O on behalf of a different request").
 */
import { DurableObject } from "cloudflare:workers";
import { pipelineWithRefusals, refusal, transactionRefusal } from "../../shared/redis-commands.ts";
import { REDIS_OBJECT_NAME, REDIS_OBJECT_TIMEOUT_VAR, REDIS_OBJECT_URL_VAR } from "../../shared/redis-object.ts";
import type { BatchAnswer, CommandAnswer, JsonReply, Outcome, RedisObjectMethods } from "../../shared/redis-object.ts";
import {
  bodyTooLargeMessage,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_BODY_BYTES,
  parseBatch,
  parseCommand,
  ProxyHttpError,
} from "../../shared/redis-protocol.ts";
import { redactUrl } from "../../shared/redact.ts";
import { RedisUnavailableError, RespConnection } from "./connection.ts";
import type { Reply } from "./resp.ts";

const DEFAULT_TIMEOUT_MS = 5000;
/** The name the object's connection has in CLIENT LIST (the proxy's are workyard-redis-proxy-*). */
export const REDIS_OBJECT_CLIENT_NAME = "workyard-redis-object";

const utf8 = new TextDecoder();
const utf8Out = new TextEncoder();

/**
 * Refuses a call whose commands would make a body over the proxy's limit (413, its message): about the body's size,
 * counted in UTF-16 units first and in bytes only when that is close (a call's arguments are strings).
 */
function checkSize(commands: readonly (readonly string[])[]): void {
  let units = 0;
  for (const command of commands) for (const word of command) units += word.length + 3;
  if (units * 3 <= DEFAULT_MAX_BODY_BYTES) return;
  let bytes = 0;
  for (const command of commands) for (const word of command) bytes += utf8Out.encode(word).length + 3;
  if (bytes > DEFAULT_MAX_BODY_BYTES) throw new ProxyHttpError(413, bodyTooLargeMessage(DEFAULT_MAX_BODY_BYTES));
}

/** A reply as the proxy answers it without base64: bytes as UTF-8 text, an error inside an array as its message. */
function toJson(reply: Reply): JsonReply {
  if (reply === null || typeof reply === "number") return reply;
  if (reply instanceof Uint8Array) return utf8.decode(reply);
  if (Array.isArray(reply)) return reply.map(toJson);
  return reply.message;
}

function outcome(reply: Reply | undefined): Outcome {
  if (reply === undefined) return { error: "ERR no reply" };
  return reply instanceof Error ? { error: reply.message } : { result: toJson(reply) };
}

function timeoutOf(value: unknown): number {
  const ms = Number(value);
  return Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_TIMEOUT_MS;
}

export class RedisObject extends DurableObject<Record<string, unknown>> implements RedisObjectMethods {
  readonly #connection: RespConnection | undefined;
  /** Names Redis in 503 messages as the proxy does: "redis at redis://host:port" (password hidden). */
  readonly #label: string;
  /** Why there is no connection (no or a bad REDIS_URL), for every answer. */
  readonly #missing: string | undefined;

  constructor(state: DurableObjectState, env: Record<string, unknown>) {
    super(state, env);
    // Only the process's one object (by its name) connects: a function reaching the namespace could make others.
    if (state.id.name !== REDIS_OBJECT_NAME) {
      this.#label = "redis";
      this.#missing = `ERR this is not the Redis object: only the one named "${REDIS_OBJECT_NAME}" talks to Redis`;
      return;
    }
    const url = env[REDIS_OBJECT_URL_VAR];
    this.#label = typeof url === "string" ? `redis at ${redactUrl(url)}` : "redis";
    if (typeof url !== "string" || url === "") {
      this.#missing = `ERR the Redis object has no Redis to talk to: ${REDIS_OBJECT_URL_VAR} is not set in workerd's environment`;
      return;
    }
    try {
      this.#connection = new RespConnection({
        url,
        timeoutMs: timeoutOf(env[REDIS_OBJECT_TIMEOUT_VAR]),
        clientName: REDIS_OBJECT_CLIENT_NAME,
        log: (line) => console.error(line),
      });
    } catch (err) {
      this.#missing = `ERR the Redis object cannot use ${this.#label}: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  async command(body: unknown): Promise<CommandAnswer> {
    try {
      const args = parseCommand(body);
      checkSize([args]);
      const why = refusal(args);
      if (why !== undefined) return { status: 400, error: why };
      const [reply] = await this.#send([args]);
      if (reply instanceof Error) return { status: 400, error: reply.message };
      return { status: 200, result: toJson(reply ?? null) };
    } catch (err) {
      return this.#failure(err);
    }
  }

  async pipeline(body: unknown): Promise<BatchAnswer> {
    try {
      const commands = parseBatch(body, DEFAULT_MAX_BATCH);
      checkSize(commands);
      const results = await pipelineWithRefusals(
        commands,
        async (allowed) => (await this.#send(allowed)).map(outcome),
        (why): Outcome => ({ error: why }),
        () => outcome(undefined),
      );
      return { status: 200, results };
    } catch (err) {
      return this.#failure(err);
    }
  }

  async multiExec(body: unknown): Promise<BatchAnswer> {
    try {
      const commands = parseBatch(body, DEFAULT_MAX_BATCH);
      checkSize(commands);
      const discarded = transactionRefusal(commands);
      if (discarded !== undefined) throw new ProxyHttpError(400, discarded);
      // MULTI, the commands and EXEC in one write: nothing another request sends can come between them.
      const replies = await this.#send([["MULTI"], ...commands, ["EXEC"]]);
      const exec = replies[replies.length - 1];
      if (exec instanceof Error) {
        const queued = replies.slice(1, -1);
        const i = queued.findIndex((r) => r instanceof Error);
        const first = queued[i];
        const why = first instanceof Error ? `: command ${i} (${String(commands[i]?.[0]).toUpperCase()}): ${first.message}` : "";
        return { status: 400, error: `${exec.message}${why}` };
      }
      if (!Array.isArray(exec)) return { status: 400, error: "ERR the transaction returned no results" };
      return { status: 200, results: exec.map(outcome) };
    } catch (err) {
      return this.#failure(err);
    }
  }

  #send(commands: readonly (readonly string[])[]): Promise<Reply[]> {
    if (!this.#connection) throw new RedisUnavailableError(this.#missing ?? "no connection");
    return this.#connection.send(commands);
  }

  /** The proxy's answer for a request that failed as a whole. */
  #failure(err: unknown): { status: number; error: string } {
    if (err instanceof ProxyHttpError) return { status: err.status, error: err.message };
    if (err instanceof RedisUnavailableError) {
      return { status: 503, error: this.#missing ?? `ERR Redis (${this.#label}) is not reachable: ${err.message}` };
    }
    console.error(`redis object: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return { status: 500, error: "ERR internal error in the Redis object" };
  }
}
