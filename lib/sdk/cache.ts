/**
 * A read-through cache in Redis. `cached(c, key, ttl, load)` answers from Redis when it can (a hit never runs
 * `load`, so never touches PostgreSQL), else runs `load` and stores the result after the response. Redis down,
 * slow or unconfigured: the cache is bypassed and `load` answers, logged once a minute. `invalidate` after a
 * write. The outcome is visible to clients in `x-cache: hit | miss | bypass`.
 */
import type { Context } from "hono";
import { redis } from "./redis.ts";

export type CacheOutcome = "hit" | "miss" | "bypass";

const READ_BUDGET_MS = 250;
let lastWarning = 0;

function warn(message: string, err: unknown): void {
  if (Date.now() - lastWarning < 60_000) return;
  lastWarning = Date.now();
  console.warn(`cache bypassed: ${message}: ${(err as Error)?.message ?? err}`);
}

function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

function later(c: Context, work: Promise<unknown>): void {
  const settled = work.catch((err: unknown) => warn("write failed", err));
  try {
    c.executionCtx.waitUntil(settled);
  } catch {
    // no execution context (a plain app.request in a test): it settles on its own
  }
}

/**
 * The value for `key`: from Redis when cached, else from `load` (then cached for `ttlSeconds`).
 * `load` returning undefined is not cached (e.g. not found).
 */
export async function cached<T>(c: Context, key: string, ttlSeconds: number, load: () => Promise<T | undefined>): Promise<T | undefined> {
  const client = redis(c);
  let outcome: CacheOutcome = "bypass";
  if (client) {
    try {
      const hit = await within(client.get<T>(key), READ_BUDGET_MS);
      if (hit !== null && hit !== undefined) {
        c.header("x-cache", "hit");
        return hit;
      }
      outcome = "miss";
    } catch (err) {
      warn(`read of ${key} failed`, err);
    }
  }
  c.header("x-cache", outcome);
  const value = await load();
  if (client && outcome === "miss" && value !== undefined) later(c, client.set(key, value, { ex: ttlSeconds }));
  return value;
}

/** Drops cached keys after a write. Never fails the request: the TTL bounds staleness if Redis is down. */
export async function invalidate(c: Context, ...keys: string[]): Promise<void> {
  const client = redis(c);
  if (!client || keys.length === 0) return;
  try {
    await within(client.del(...keys), READ_BUDGET_MS);
  } catch (err) {
    warn(`invalidation of ${keys.join(", ")} failed (stale for up to its TTL)`, err);
  }
}
