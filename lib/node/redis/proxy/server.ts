/**
 * The Redis HTTP proxy: an HTTP server on loopback speaking the Upstash REST protocol
 * (shared/notes/upstash-rest-protocol.md) in front of a RedisBackend. Plain node:http, since every
 * microsecond per request counts against webdis and a direct Redis client.
 *
 * Routes (POST unless said otherwise; every answer is JSON):
 *   /             ["CMD", ...args]            one command
 *   /pipeline     [["CMD", ...], ...]         in order on one connection, not atomic
 *   /multi-exec   [["CMD", ...], ...]         MULTI/EXEC on a connection of its own
 *   /subscribe/<channel>, /psubscribe/<pattern> (GET or POST)   Server-Sent Events
 *   /<cmd>/<arg>/... (GET or POST)             path style; a POST body is one more argument
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { tokenChecker } from "../../common/http.ts";
import { exactHeaderChecker, presentedToken } from "./auth.ts";
import type { RedisArgs, RedisBackend, RedisOutcome } from "./backend.ts";
import { readBody } from "./body.ts";
import { refusal } from "./commands.ts";
import { pipelineWithRefusals, transactionRefusal } from "../../../shared/redis-commands.ts";
import { BackendUnavailableError, ProxyHttpError, RedisReplyError } from "./errors.ts";
import { errorBody, outcomesBody, parseBatch, parseCommand, parseJson, resultBody, wantsBase64 } from "./protocol.ts";
import { DEFAULT_MAX_BODY_BYTES } from "../../../shared/redis-protocol.ts";
import { subscriptionStreams } from "./subscribe.ts";

export interface RedisProxyOptions {
  /** Loopback only: 127.x.x.x, ::1 or localhost. Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. Default 0. */
  port?: number;
  /** The bearer token clients must present (UPSTASH_REDIS_REST_TOKEN on their side). */
  token: string;
  backend: RedisBackend;
  /** Largest request body accepted; larger ones get 413. Default 4 MiB. */
  maxBodyBytes?: number;
  /** Most commands in one pipeline or transaction; more get 413. Default 1000 (the client's auto-pipeline batch). */
  maxBatch?: number;
  /** Most open subscription streams (each holds a Redis connection); more get 503. Default 256. */
  maxSubscriptions?: number;
  /** Where unexpected errors are reported. Default console.error. */
  log?: (line: string) => void;
}

/** The proxy's own counters since it started (for the metrics). */
export interface RedisProxyStats {
  /** Answers sent, by status code. */
  responses: Map<number, number>;
  /** Open subscription streams. */
  subscriptions: number;
}

export interface RedisProxy {
  /** Base URL for clients, e.g. http://127.0.0.1:40123 (UPSTASH_REDIS_REST_URL). */
  url: string;
  port: number;
  stats(): RedisProxyStats;
  /** Stops accepting requests, ends open subscription streams and connections. The backend stays open. */
  stop(): Promise<void>;
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|::1|localhost)$/;

const optionsSchema = z.object({
  host: z
    .string()
    .regex(
      LOOPBACK,
      "The Redis proxy listens on loopback only: use 127.0.0.1, ::1 or localhost (it has no TLS; put it behind one if it must be reached from elsewhere)",
    )
    .default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(0),
  token: z.string().min(1, "The Redis proxy needs a non-empty token: clients present it as `Authorization: Bearer <token>`"),
  maxBodyBytes: z.number().int().positive().default(DEFAULT_MAX_BODY_BYTES),
  maxBatch: z.number().int().positive().default(1000),
  maxSubscriptions: z.number().int().positive().default(256),
});

const RETRY_AFTER_SECONDS = "1";

interface WantedHeaders {
  authorization?: string;
  encoding?: string;
  /** Content-Length as declared (0 when absent); the body reader still counts what arrives. */
  declaredLength: number;
}

/**
 * The request headers the proxy reads, from the raw list: asking `req.headers` makes node:http build an object of
 * every header first (about 3% of the proxy's CPU per request, wrk against POST /). The first of each wins, as in
 * `req.headers`.
 */
function wantedHeaders(raw: string[]): WantedHeaders {
  const found: WantedHeaders = { declaredLength: 0 };
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 13 && found.authorization === undefined && name.toLowerCase() === "authorization") found.authorization = raw[i + 1];
    else if (name.length === 16 && found.encoding === undefined && name.toLowerCase() === "upstash-encoding") found.encoding = raw[i + 1];
    else if (name.length === 14 && name.toLowerCase() === "content-length") found.declaredLength = Number(raw[i + 1]);
  }
  return found;
}

/** Starts the proxy; resolves once it listens. */
export async function startRedisProxy(options: RedisProxyOptions): Promise<RedisProxy> {
  const parsed = optionsSchema.safeParse({
    host: options.host,
    port: options.port,
    token: options.token,
    maxBodyBytes: options.maxBodyBytes,
    maxBatch: options.maxBatch,
    maxSubscriptions: options.maxSubscriptions,
  });
  if (!parsed.success) {
    throw new Error(`Invalid Redis proxy options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  const { host, port, token, maxBodyBytes, maxBatch, maxSubscriptions } = parsed.data;
  const { backend } = options;
  const log = options.log ?? ((line: string) => console.error(line));
  const checkToken = tokenChecker(token);
  const exactHeader = exactHeaderChecker(token);
  const streams = subscriptionStreams(backend);
  // One Redis behind the proxy, so any opaque value satisfies read-your-writes.
  const syncToken = randomBytes(8).toString("hex");
  const jsonHeaders = { "content-type": "application/json", "upstash-sync-token": syncToken };

  const responses = new Map<number, number>();

  function send(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
    responses.set(status, (responses.get(status) ?? 0) + 1);
    // Every answer but errors: headers as a flat list, which node:http writes without walking an object (35.9 → 31.1 µs
    // of CPU per request, wrk against POST /).
    if (extra === undefined) {
      res.writeHead(status, [
        "content-type",
        "application/json",
        "upstash-sync-token",
        syncToken,
        "content-length",
        String(Buffer.byteLength(body)),
      ]);
    } else {
      res.writeHead(status, { ...jsonHeaders, "content-length": Buffer.byteLength(body), ...extra });
    }
    res.end(body);
  }

  function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const incoming = req.headers["x-request-id"];
    // Echo a caller's id only when it is a plain token: anything else could not go back as a header.
    const requestId = typeof incoming === "string" && /^[\w.:@/+=-]{1,200}$/.test(incoming) ? incoming : randomUUID();
    const idHeader = { "x-request-id": requestId };
    if (err instanceof ProxyHttpError) {
      send(res, err.status, errorBody(err.message, requestId), { ...idHeader, ...err.headers });
    } else if (err instanceof RedisReplyError) {
      send(res, 400, errorBody(err.message, requestId), idHeader);
    } else if (err instanceof BackendUnavailableError) {
      send(res, 503, errorBody(err.message, requestId), { ...idHeader, "retry-after": RETRY_AFTER_SECONDS });
    } else {
      log(
        `redis proxy: request ${requestId} ${req.method ?? ""} ${(req.url ?? "").split("?")[0]} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      send(res, 500, errorBody(`ERR internal error in the Redis proxy (request id ${requestId})`, requestId), idHeader);
    }
  }

  function runPipeline(commands: RedisArgs[]): Promise<RedisOutcome[]> {
    return pipelineWithRefusals(
      commands,
      (allowed) => backend.pipeline(allowed),
      (why): RedisOutcome => ({ ok: false, error: new RedisReplyError(why) }),
      (): RedisOutcome => ({ ok: false, error: new RedisReplyError("ERR no reply") }),
    );
  }

  function runTransaction(commands: RedisArgs[]): Promise<RedisOutcome[]> {
    const discarded = transactionRefusal(commands);
    if (discarded !== undefined) throw new ProxyHttpError(400, discarded);
    return backend.transaction(commands);
  }

  function assertAllowed(args: RedisArgs): void {
    const why = refusal(args);
    if (why !== undefined) throw new ProxyHttpError(400, why);
  }

  function pathSegments(path: string): string[] {
    try {
      return path
        .split("/")
        .filter((s) => s !== "")
        .map(decodeURIComponent);
    } catch (err) {
      throw new ProxyHttpError(400, `ERR the path ${JSON.stringify(path)} is not valid percent-encoding`, { cause: err });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "";
    if (method !== "POST" && method !== "GET") {
      req.resume();
      throw new ProxyHttpError(405, `ERR method ${method} is not allowed: use POST (or GET for path-style commands)`, {
        headers: { allow: "GET, POST" },
      });
    }
    const rawUrl = req.url ?? "/";
    const q = rawUrl.indexOf("?");
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const { authorization, encoding, declaredLength } = wantedHeaders(req.rawHeaders);
    const exact = authorization !== undefined && exactHeader(authorization);
    const presented = exact
      ? undefined
      : presentedToken(authorization, authorization === undefined && q !== -1 ? new URL(rawUrl, "http://proxy") : undefined);
    if (!exact && !checkToken(presented)) {
      req.resume();
      throw new ProxyHttpError(
        401,
        presented === undefined
          ? "Unauthorized: send the proxy token as `Authorization: Bearer <token>` (or the _token query parameter)"
          : "Unauthorized: the token is not the proxy's token",
        { headers: { "www-authenticate": 'Bearer realm="redis-proxy"' } },
      );
    }
    const base64 = wantsBase64(encoding);

    if (path === "/" || path === "") {
      if (method !== "POST") {
        req.resume();
        throw new ProxyHttpError(400, 'ERR no command: POST a JSON array like ["GET", "key"] to /, or use a path like /get/<key>');
      }
      const args = parseCommand(parseJson(await readBody(req, maxBodyBytes, declaredLength)));
      assertAllowed(args);
      send(res, 200, resultBody(await backend.command(args), base64));
      return;
    }
    if (path === "/pipeline" || path === "/multi-exec") {
      if (method !== "POST") {
        req.resume();
        throw new ProxyHttpError(405, `ERR ${path} takes POST with a JSON array of commands`, { headers: { allow: "POST" } });
      }
      const commands = parseBatch(parseJson(await readBody(req, maxBodyBytes, declaredLength)), maxBatch);
      const outcomes = path === "/pipeline" ? await runPipeline(commands) : await runTransaction(commands);
      send(res, 200, outcomesBody(outcomes, base64));
      return;
    }
    const segments = pathSegments(path);
    const first = (segments[0] ?? "").toLowerCase();
    if ((first === "subscribe" || first === "psubscribe") && segments.length >= 2) {
      if (streams.active >= maxSubscriptions) {
        req.resume();
        throw new ProxyHttpError(503, `ERR too many open subscriptions (limit ${maxSubscriptions}): try again later`, {
          headers: { "retry-after": RETRY_AFTER_SECONDS },
        });
      }
      await streams.serve(req, res, first === "psubscribe" ? "pattern" : "channel", segments.slice(1), { "upstash-sync-token": syncToken });
      return;
    }
    // Path style: /set/foo/bar; a POST body is the last argument (Upstash: `curl -X POST -d "$VALUE" .../set/foo`).
    const args: (string | Buffer)[] = segments;
    if (method === "POST") {
      const body = await readBody(req, maxBodyBytes, declaredLength);
      if (body.length > 0) args.push(body);
    } else {
      req.resume();
    }
    assertAllowed(args);
    send(res, 200, resultBody(await backend.command(args), base64));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      try {
        sendError(req, res, err);
      } catch (inner) {
        log(`redis proxy: could not answer an error: ${String(inner)}`);
        res.destroy();
      }
    });
  });
  // Longer than the clients' keep-alive (undici: 4 s) so that the server never closes a socket a client is reusing.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("clientError", (_err, socket) => {
    if (socket.writable)
      socket.end(
        'HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":"ERR malformed HTTP request"}',
      );
    else socket.destroy();
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    stats: () => ({ responses: new Map(responses), subscriptions: streams.active }),
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await streams.closeAll();
      server.closeAllConnections();
      await closed;
    },
  };
}
