/**
 * The Upstash REST wire format (shared/notes/upstash-rest-protocol.md): request bodies to commands,
 * replies to `{"result": ...}` with optional base64 encoding, errors to `{"error": ...}`.
 */
import type { RedisArgs, RedisOutcome, RedisReply } from "./backend.ts";
import { ProxyHttpError } from "./errors.ts";

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

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}

/**
 * One command from JSON: a non-empty array whose first element is the name; arguments may be strings,
 * numbers or booleans (the client stringifies them, but other clients may not) and are sent as strings.
 */
export function parseCommand(value: unknown, where = "the body"): RedisArgs {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ProxyHttpError(400, `ERR ${where} must be a non-empty JSON array like ["SET", "key", "value"], got ${describe(value)}`);
  }
  const args: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v === "string") args.push(v);
    else if ((typeof v === "number" && Number.isFinite(v)) || typeof v === "boolean") args.push(String(v));
    else {
      throw new ProxyHttpError(400, `ERR element ${i} of ${where} must be a string, a finite number or a boolean, got ${describe(v)}`);
    }
  }
  if (args[0] === "") throw new ProxyHttpError(400, `ERR ${where} has an empty command name`);
  return args;
}

/** A pipeline or transaction body: a non-empty array of commands, at most maxBatch of them. */
export function parseBatch(value: unknown, maxBatch: number): RedisArgs[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ProxyHttpError(
      400,
      `ERR the body must be a non-empty JSON array of commands like [["SET", "k", "v"], ["GET", "k"]], got ${value === undefined ? "nothing" : describe(value)}`,
    );
  }
  if (value.length > maxBatch) {
    throw new ProxyHttpError(413, `ERR the batch has ${value.length} commands, more than the limit of ${maxBatch}: split it`);
  }
  return value.map((c: unknown, i) => parseCommand(c, `command ${i}`));
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
