/**
 * The request body limit of `createApp`: like Hono's `bodyLimit` (declared lengths are checked up front, streamed
 * bodies are counted as they are read and buffered for the handler), except that an oversized body of moderate
 * size is read to its end and dropped before the 413. Answering while the client is still sending makes workerd
 * reset the connection, and most clients (Node's fetch among them) then report a network error instead of the
 * 413, or fail their next request on the same keep-alive connection.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";

/** Oversized bodies up to this many bytes are read and dropped before the 413; larger ones are not. */
const DRAIN_BODY_LIMIT = 16 * 1024 * 1024;

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, already: number): Promise<void> {
  let read = already;
  try {
    while (read <= DRAIN_BODY_LIMIT) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.length;
    }
    await reader.cancel();
  } catch {
    // the client went away: nothing left to drain
  }
}

/**
 * Reads and drops what is left of a request body nobody read (a 404, a 415, a 401 before the body was looked at),
 * for the same reason: otherwise workerd closes the keep-alive connection under the client, whose next request
 * on it fails. Bodies past DRAIN_BODY_LIMIT are not read.
 */
export async function discardUnreadBody(request: Request): Promise<void> {
  if (!request.body || request.bodyUsed) return;
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > DRAIN_BODY_LIMIT) return;
  await drain(request.body.getReader(), 0);
}

export const bodyLimit = ({ maxBytes }: { maxBytes: number }): MiddlewareHandler =>
  async function bodyLimit(c, next) {
    const body = c.req.raw.body;
    if (!body) return next();
    const tooLarge = () => new ApiError(413, `Request body is larger than ${maxBytes} bytes`, { code: "payload_too_large" });
    const declared = c.req.raw.headers.has("transfer-encoding") ? null : c.req.raw.headers.get("content-length");
    if (declared !== null) {
      const length = Number(declared);
      if (!(length > maxBytes)) return next();
      await discardUnreadBody(c.req.raw);
      throw tooLarge();
    }
    const reader = body.getReader();
    let size = 0;
    let buffer = new Uint8Array(0);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const offset = size;
      size += value.length;
      if (size > maxBytes) {
        await drain(reader, size);
        throw tooLarge();
      }
      if (size > buffer.length) {
        const grown = new Uint8Array(Math.min(maxBytes, Math.max(size, buffer.length * 2)));
        grown.set(buffer.subarray(0, offset));
        buffer = grown;
      }
      buffer.set(value, offset);
    }
    c.req.raw = new Request(c.req.raw, { body: buffer.subarray(0, size) });
    return next();
  };
