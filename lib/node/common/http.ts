/**
 * What the platform's loopback HTTP servers share (the control endpoint, the collector, the dev endpoints; the Redis
 * proxy keeps its own hot path and uses the token check): JSON answers, bodies read with a limit, a bearer token
 * compared in constant time, and a server on a free loopback port whose handler errors become JSON answers.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** An answer other than 200 that a handler decides on: thrown, and sent as `{ error: { code, message } }`. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** Sends a body as it is, never cached. */
export function send(res: ServerResponse, status: number, body: string | Buffer, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", ...headers });
  res.end(body);
}

/** Sends JSON (one line, with a newline), never cached. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, `${JSON.stringify(body)}\n`, "application/json; charset=utf-8", headers);
}

/** Sends the JSON error shape every endpoint of the platform answers: `{ error: { code, message } }`. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/** Reads the whole body, refusing (413) one larger than `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) throw new HttpError(413, "too_large", `The body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, "too_large", `The body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a JSON body (an empty one is `{}`); malformed JSON is a 400. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const text = (await readBody(req, limit)).toString("utf8");
  try {
    return JSON.parse(text || "{}");
  } catch (err) {
    throw new HttpError(400, "invalid_input", `The body is not JSON: ${(err as Error).message}`);
  }
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/**
 * A checker that tells whether a presented token is the expected one, in constant time: both sides are hashed
 * first, so the comparison's time says nothing about the token's length or content.
 */
export function tokenChecker(expected: string): (presented: string | undefined) => boolean {
  const want = digest(expected);
  return function checkToken(presented) {
    if (presented === undefined) return false;
    return timingSafeEqual(digest(presented), want);
  };
}

/** A checker for exactly `Authorization: Bearer <token>` (no other scheme spelling, no query parameter). */
export function bearerChecker(token: string): (req: IncomingMessage) => boolean {
  const check = tokenChecker(token);
  return function hasBearer(req) {
    return check(/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1]);
  };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface LoopbackServer {
  server: Server;
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface LoopbackOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Told about a handler that failed with something other than an HttpError (a bug, or a backend down). */
  onError?: (err: unknown, req: IncomingMessage) => void;
  keepAliveTimeoutMs?: number;
}

/**
 * Serves `handler` on 127.0.0.1. An HttpError it throws is answered with its status and the JSON error shape; any
 * other error is a 500 `internal_error` (or a cut connection once the answer has started).
 */
export async function listenLoopback(
  handler: Handler,
  { port = 0, onError, keepAliveTimeoutMs }: LoopbackOptions = {},
): Promise<LoopbackServer> {
  const server = createServer((req, res) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        if (err instanceof HttpError) {
          if (!res.headersSent) return sendError(res, err.status, err.code, err.message, err.headers);
        } else {
          onError?.(err, req);
          if (!res.headersSent) return sendError(res, 500, "internal_error", (err as Error).message);
        }
        res.destroy();
      });
  });
  if (keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = keepAliveTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
