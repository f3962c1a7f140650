/**
 * The request body limit of `createApp`, and how bodies are read so that no client can hold a request open or make
 * a broken body look like a server fault:
 * - a declared length over the limit is refused (413) before anything is read; a small declared body (up to
 *   READ_AHEAD_BYTES, and not awaiting a 100 Continue) is read whole before the handler runs, so a stalled one is a
 *   408 even on a route that would not read it (any route that reads bodies could be held that long anyway); a
 *   streamed (chunked) body is counted as it is read and buffered for the handler;
 * - every read has a deadline: a body that sends nothing for BODY_IDLE_MS is abandoned with a 408 (a small declared
 *   body must arrive whole within it);
 * - a body the transport cannot deliver (a malformed chunk, the client gone) is the client's 400 `invalid_body`, never
 *   a 500 or a 503 that monitoring would blame on the database;
 * - an oversized or unread body of moderate size is read and dropped before answering, briefly (DRAIN_MS at most, and
 *   DRAIN_IDLE_MS of silence ends it): answering while a client is still sending makes workerd reset the connection,
 *   and most clients (Node's fetch among them) then report a network error instead of the 413, or fail their next
 *   request on the same keep-alive connection. A client that stops sending is answered all the same.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";
import { copyRequest } from "./request-copy.ts";

/** Oversized bodies up to this many bytes are read and dropped before the 413; larger ones are not. */
const DRAIN_BODY_LIMIT = 16 * 1024 * 1024;
/** The longest an unread or oversized body is drained before the answer goes out anyway. */
const DRAIN_MS = 1000;
/** A drain ends as soon as the client has sent nothing for this long. */
const DRAIN_IDLE_MS = 250;
/**
 * Bodies declared this small or smaller are read whole before the handler runs, in one read; larger ones reach it as
 * a stream of their own that keeps the deadline and error mapping. That stream, a JavaScript one around workerd's,
 * costs more than the read for a small body: about 6% of a GraphQL POST's CPU in workerd's profile.
 */
const READ_AHEAD_BYTES = 64 * 1024;
/** A body that sends nothing for this long is given up on: 408. */
export const BODY_IDLE_MS = 10_000;

const TIMED_OUT = Symbol("timed out");

/** What `work` settles to, or TIMED_OUT when it has not within `ms`. */
async function within<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)));
  try {
    return await Promise.race([work, timeout]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

/** The reader's next chunk, or TIMED_OUT when none came within `ms`. */
const readWithin = (reader: ReadableStreamDefaultReader<Uint8Array>, ms: number) => within(reader.read(), ms);

/** The next chunk of a request body, or the client's error: 408 when it stalls, 400 when the transport breaks. */
async function readBodyChunk(reader: ReadableStreamDefaultReader<Uint8Array>) {
  let next;
  try {
    next = await readWithin(reader, BODY_IDLE_MS);
  } catch (err) {
    throw new ApiError(400, "The request body could not be read (malformed, or the client went away)", {
      code: "invalid_body",
      cause: err,
    });
  }
  if (next === TIMED_OUT) {
    reader.cancel().catch(() => undefined);
    throw new ApiError(408, `The request body stopped arriving (nothing for ${BODY_IDLE_MS / 1000} s)`, { code: "request_timeout" });
  }
  return next;
}

/**
 * A small declared body, whole: one read by workerd under one deadline (BODY_IDLE_MS for all of it, the idle limit of
 * the larger bodies), with readBodyChunk's answers: 408 when it does not arrive in time, 400 when the transport breaks.
 */
async function readSmallBody(request: Request): Promise<ArrayBuffer> {
  let bytes: ArrayBuffer | typeof TIMED_OUT;
  try {
    bytes = await within(request.arrayBuffer(), BODY_IDLE_MS);
  } catch (err) {
    throw new ApiError(400, "The request body could not be read (malformed, or the client went away)", {
      code: "invalid_body",
      cause: err,
    });
  }
  if (bytes === TIMED_OUT)
    throw new ApiError(408, `The request body did not arrive within ${BODY_IDLE_MS / 1000} s`, { code: "request_timeout" });
  return bytes;
}

/** A client that sent `Expect: 100-continue` and waits to be told to send its body (workerd says so on the first read). */
const expectsContinue = (request: Request) => /100-continue/i.test(request.headers.get("expect") ?? "");

/** Why a request's body could not be read, kept so the answer says so even where a parser replaced the error. */
const bodyFailures = new WeakMap<Request, ApiError>();

/**
 * The 408 or 400 a failed body read of `request` became, if one did: Hono's JSON validator answers any failure to read
 * the body as "Malformed JSON", and the error handler restores what happened.
 */
export const bodyFailureOf = (request: Request): ApiError | undefined => bodyFailures.get(request);

/** `request` with its body read under readBodyChunk's deadline and error mapping: the same bytes. */
function guardedRequest(request: Request, body: ReadableStream<Uint8Array>): Request {
  const reader = body.getReader();
  const guarded: Request = copyRequest(request, {
    body: new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await readBodyChunk(reader);
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          if (err instanceof ApiError) bodyFailures.set(guarded, err);
          controller.error(err);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    }),
  });
  return guarded;
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, already: number): Promise<void> {
  const until = Date.now() + DRAIN_MS;
  let read = already;
  try {
    while (read <= DRAIN_BODY_LIMIT) {
      const left = until - Date.now();
      if (left <= 0) break;
      const next = await readWithin(reader, Math.min(DRAIN_IDLE_MS, left));
      if (next === TIMED_OUT) break;
      if (next.done) return;
      read += next.value.length;
    }
    reader.cancel().catch(() => undefined);
  } catch {
    // the client went away: nothing left to drain
  }
}

/**
 * Reads and drops what is left of a request body nobody read (a 404, a 413, a 401 before the body was looked at),
 * briefly (see above), so that the keep-alive connection survives for clients that send at once. Bodies declared
 * past DRAIN_BODY_LIMIT are not read.
 */
export async function discardUnreadBody(request: Request): Promise<void> {
  if (!request.body || request.bodyUsed) return;
  // A client that asked `Expect: 100-continue` has sent nothing yet: reading would tell it to go on (workerd sends the
  // 100 on the first read); answering now is what RFC 9110 10.1.1 intends.
  if (expectsContinue(request)) return;
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > DRAIN_BODY_LIMIT) return;
  await drain(request.body.getReader(), 0);
}

/** A GET or HEAD that carries a body (RFC 9110 gives it no meaning; a Request cannot even be made of it). */
export function hasBodyItCannotHave(
  request: Request,
  // The framing headers, when the caller has read them already (each read crosses into workerd).
  transferEncoding = request.headers.get("transfer-encoding"),
  contentLength = request.headers.get("content-length"),
): boolean {
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  return transferEncoding !== null || Number(contentLength ?? 0) > 0;
}

export const bodyLimit = ({ maxBytes }: { maxBytes: number }): MiddlewareHandler =>
  async function bodyLimit(c, next) {
    const body = c.req.raw.body;
    if (!body) return next();
    if (hasBodyItCannotHave(c.req.raw)) {
      await discardUnreadBody(c.req.raw);
      throw new ApiError(400, `A ${c.req.method} request cannot have a body`, { code: "invalid_body" });
    }
    const tooLarge = () => new ApiError(413, `Request body is larger than ${maxBytes} bytes`, { code: "payload_too_large" });
    const declared = c.req.raw.headers.has("transfer-encoding") ? null : c.req.raw.headers.get("content-length");
    if (declared !== null) {
      const length = Number(declared);
      if (length > maxBytes) {
        await discardUnreadBody(c.req.raw);
        throw tooLarge();
      }
      // A client that asked `Expect: 100-continue` waits to be told to send: only a handler that reads the body tells it
      // (a 401 or 404 is answered without it), so its body stays unread until then.
      const readAhead = length <= READ_AHEAD_BYTES && !expectsContinue(c.req.raw);
      c.req.raw = readAhead ? copyRequest(c.req.raw, { body: await readSmallBody(c.req.raw) }) : guardedRequest(c.req.raw, body);
      return next();
    }
    const reader = body.getReader();
    let size = 0;
    let buffer = new Uint8Array(0);
    for (;;) {
      const { done, value } = await readBodyChunk(reader);
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
    c.req.raw = copyRequest(c.req.raw, { body: buffer.subarray(0, size) });
    return next();
  };
