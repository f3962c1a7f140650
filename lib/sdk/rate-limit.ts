/**
 * Rate limiting with @upstash/ratelimit (sliding window in Redis), per client IP by default or per any key
 * (an account, an API key). Over the limit: 429 JSON with Retry-After. Every answer carries the limit in
 * `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds). When Redis cannot be asked, the
 * `failMode` decides: "open" lets the request through (`RateLimit-Policy: bypassed`), "closed" answers 503.
 *
 * Pinned to @upstash/ratelimit 2.0.8: from 2.1 its Lua scripts declare `#!lua flags=allow-key-locking`,
 * which Redis before 7.4 (Debian 12 ships 7.0) refuses with "Unexpected flag in script shebang".
 */
import type { Context, MiddlewareHandler } from "hono";
import { Ratelimit } from "@upstash/ratelimit";
import type { Duration } from "@upstash/ratelimit";
import { clientIpOf } from "./client-ip.ts";
import { ApiError } from "./errors.ts";
import { redis } from "./redis.ts";

export interface RateLimitOptions {
  /** Requests allowed per window (or a function of the request, e.g. reading a var). */
  limit: number | ((c: Context) => number);
  /** Window length, e.g. "10 s", "1 m". */
  window: Duration;
  /** What is limited; default the client's IP (client-ip.ts). */
  key?: (c: Context) => string | Promise<string>;
  /** Redis keys prefix; give each limit its own. */
  prefix?: string;
  /** What to do when Redis cannot be asked. Default "open". */
  failMode?: "open" | "closed";
  /** How long to wait for Redis before applying failMode. */
  timeoutMs?: number;
}

/** The client's IP (see client-ip.ts: never a header a remote client set). */
export const clientIp = (c: Context) => clientIpOf(c.req.raw);

// Blocked identifiers are remembered in memory per worker so a flood does not reach Redis at all.
const ephemeral = new Map<string, number>();

/** Middleware that limits requests per key. */
export const rateLimit = ({
  limit,
  window,
  key = clientIp,
  prefix = "ratelimit",
  failMode = "open",
  timeoutMs = 500,
}: RateLimitOptions): MiddlewareHandler =>
  async function rateLimit(c, next) {
    const client = redis(c);
    const id = await key(c);
    const max = typeof limit === "function" ? limit(c) : limit;
    let result: Awaited<ReturnType<Ratelimit["limit"]>> | undefined;
    if (client) {
      const limiter = new Ratelimit({
        redis: client,
        limiter: Ratelimit.slidingWindow(max, window),
        prefix,
        ephemeralCache: ephemeral,
        timeout: 0,
      });
      try {
        result = await Promise.race([
          limiter.limit(id),
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs)),
        ]);
      } catch (err) {
        console.warn(`rate limit (${prefix}) could not ask Redis: ${(err as Error).message}`);
      }
    }
    if (!result) {
      if (failMode === "closed") {
        throw new ApiError(503, "Rate limiting is unavailable; try again shortly", {
          code: "rate_limit_unavailable",
          headers: { "retry-after": "5" },
        });
      }
      c.header("ratelimit-policy", "bypassed");
      return next();
    }
    try {
      c.executionCtx.waitUntil(result.pending);
    } catch {
      // no execution context in plain app.request tests
    }
    const resetSeconds = Math.max(0, Math.ceil((result.reset - Date.now()) / 1000));
    const headers = {
      "ratelimit-limit": String(result.limit),
      "ratelimit-remaining": String(Math.max(0, result.remaining)),
      "ratelimit-reset": String(resetSeconds),
    };
    if (!result.success) {
      throw new ApiError(429, `Too many requests: ${max} per ${window}; try again in ${resetSeconds} s`, {
        headers: { ...headers, "retry-after": String(Math.max(1, resetSeconds)) },
      });
    }
    for (const [name, value] of Object.entries(headers)) c.header(name, value);
    await next();
  };
