/**
 * Redis for functions, through `@upstash/redis` (HTTP). Bindings are the names Upstash itself uses,
 * UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (secrets from the environment): `npm start` points them
 * at the project's proxy; on Cloudflare the same code talks to Upstash. One client per request (cached on the
 * context), failing fast: callers decide what a Redis outage means (the cache bypasses, the rate limit
 * follows its fail mode).
 */
import type { Context } from "hono";
import { Redis } from "@upstash/redis/cloudflare";
import { perEnv } from "./env.ts";

export const REDIS_URL_BINDING = "UPSTASH_REDIS_REST_URL";
export const REDIS_TOKEN_BINDING = "UPSTASH_REDIS_REST_TOKEN";

/** A client from the bindings, or null when the function has no Redis configured. */
export function redisFromEnv(env: unknown, options: { timeoutMs?: number } = {}): Redis | null {
  const bindings = (env ?? {}) as Record<string, unknown>;
  const url = bindings[REDIS_URL_BINDING];
  const token = bindings[REDIS_TOKEN_BINDING];
  if (typeof url !== "string" || !url || typeof token !== "string" || !token) return null;
  return new Redis({
    url,
    token,
    // One try: a Redis outage should cost a request milliseconds, not the client's five retries with backoff.
    retry: false,
    enableTelemetry: false,
    // Per request anyway; batching across requests would share I/O between them, which workerd forbids.
    enableAutoPipelining: false,
    // A caller that would rather go on without Redis than wait for it (the outbound breaker) bounds each command.
    ...(options.timeoutMs === undefined ? {} : { signal: () => AbortSignal.timeout(options.timeoutMs as number) }),
  });
}

/**
 * One client per env object (per worker), made on first use: the client keeps no connection of its own (each
 * command is a `fetch` in the calling request), so it is safe to share, and making one per request cost more
 * than the command itself in a small read.
 */
const clientOf = perEnv((env) => redisFromEnv(env));

/** The Redis client for this function (made on first use), or null when none is configured. */
export function redis(c: Context): Redis | null {
  return clientOf(c.env);
}
