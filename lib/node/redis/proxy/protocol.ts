/**
 * The Upstash REST wire format (shared/notes/upstash-rest-protocol.md): request bodies to commands,
 * replies to `{"result": ...}` with optional base64 encoding, errors to `{"error": ...}`.
 */
import type { RedisOutcome, RedisReply } from "./backend.ts";
import { ProxyHttpError } from "./errors.ts";
export { parseBatch, parseCommand } from "../../../shared/redis-protocol.ts";

/** JSON value of one reply, as the client reads it. */
export type JsonReply = null | number | string | JsonReply[];

function isOk(buf: Buffer): boolean {
  return buf.length === 2 && buf[0] === 0x4f && buf[1] === 0x4b;
}

function encodeNested(reply: RedisReply, base64: boolean): JsonReply {
  if (reply === null || typeof reply === "number") return reply;
  if (Buffer.isBuffer(reply)) return base64 ? reply.toString("base64") : reply.toString("utf8");
  if (Array.isArray(reply)) return reply.map((r) => encodeNested(r, base64));
  // An error inside an array (EXEC, Lua) travels as its message, like any other string in a result.
  return base64 ? Buffer.from(reply.message).toString("base64") : reply.message;
}

/**
 * One reply as JSON. With base64 every string is encoded, recursively, except a top-level "OK": the
 * client leaves a top-level "OK" alone but base64-decodes every string inside arrays.
 */
export function encodeReply(reply: RedisReply, base64: boolean): JsonReply {
  if (Buffer.isBuffer(reply) && isOk(reply)) return "OK";
  return encodeNested(reply, base64);
}

export function resultBody(reply: RedisReply, base64: boolean): string {
  return JSON.stringify({ result: encodeReply(reply, base64) });
}

/** A pipeline or transaction answer: one `{"result"}` or `{"error"}` per command; errors are never encoded. */
export function outcomesBody(outcomes: readonly RedisOutcome[], base64: boolean): string {
  return JSON.stringify(outcomes.map((o) => (o.ok ? { result: encodeReply(o.reply, base64) } : { error: o.error.message })));
}

export function errorBody(message: string, requestId?: string): string {
  return JSON.stringify(requestId === undefined ? { error: message } : { error: message, requestId });
}

/** Parses a JSON body, answering 400 with the parser's reason when it is not JSON. */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new ProxyHttpError(400, `ERR the body is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Whether the client asked for base64 encoded strings (`Upstash-Encoding: base64`). */
export function wantsBase64(header: string | string[] | undefined): boolean {
  return typeof header === "string" && header.toLowerCase() === "base64";
}
