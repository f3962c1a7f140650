/**
 * The environment workerd processes see: only what functions declare as secrets, the internal token, what
 * /readyz checks, and the Redis object's URL when functions use Redis. Nothing else from the supervisor's environment leaks in, and each function is bound only to
 * what it declares (the generated config names each binding).
 */
import {
  COLLECTOR_TOKEN_VAR,
  COLLECTOR_URL_VAR,
  DB_CACHE_VAR,
  DB_LISTEN_URL_VAR,
  DB_POOL_MAX_VAR,
  INTERNAL_TOKEN_VAR,
  QUEUE_SERVICE_TOKEN_VAR,
  QUEUE_SERVICE_URL_VAR,
} from "../../shared/names.ts";
import { declaresRedis, REDIS_OBJECT_SWITCH, REDIS_OBJECT_TIMEOUT_VAR, REDIS_OBJECT_URL_VAR } from "../../shared/redis-object.ts";
import { UserError } from "../common/user-error.ts";
import type { Collector } from "../observe/collector.ts";
import type { Manifest } from "../releases/manifest.ts";
import type { RedisService } from "../redis/service.ts";
import type { Database } from "./database.ts";

export interface WorkerdEnvOptions {
  manifest: Manifest;
  /** The supervisor's environment: declared secrets are read from it. */
  env: NodeJS.ProcessEnv;
  internalToken: string;
  database: Database;
  redis: RedisService;
  collector: Collector;
  /** The queue service queue bindings send to (through the internal worker). */
  queues: { url: string; token: string };
}

/** The environment for a release's processes, and the secrets its functions declare that nothing sets. */
export function workerdEnvironment({ manifest, env: from, internalToken, database, redis, collector, queues }: WorkerdEnvOptions): {
  env: Record<string, string>;
  missing: Map<string, string[]>;
} {
  const env: Record<string, string> = {
    [INTERNAL_TOKEN_VAR]: internalToken,
    // The internal worker's /readyz reaches the pooler and the proxy as functions do.
    DATABASE_URL: database.functionUrl,
    ...redis.bindings,
    // The gateway and the trace sink report to the collector; the internal worker forwards /metrics and /dashboard to it.
    [COLLECTOR_URL_VAR]: collector.url,
    [COLLECTOR_TOKEN_VAR]: collector.token,
    [QUEUE_SERVICE_URL_VAR]: queues.url,
    [QUEUE_SERVICE_TOKEN_VAR]: queues.token,
    // PGlite runs one query at a time and accepts a limited number of connections: a function host's pool of
    // more than one connection per process would only queue (and, through a deploy, run out of connections).
    ...(database.backend.kind === "embedded-pglite" ? { [DB_POOL_MAX_VAR]: "1" } : {}),
    // Function hosts' read caches listen here for each other's writes; without it, cached() reads the database.
    // The embedded PGlite delivers no notifications between connections, so there the read cache is off.
    ...(readCacheOn(from) && database.backend.kind === "postgres" ? { [DB_LISTEN_URL_VAR]: database.listenUrl } : {}),
  };
  // The Redis object (lib/workers/redis/object.ts) connects to REDIS_URL itself: its URL, with the password, goes into
  // workerd's environment only when a function declares the Upstash secrets and the object is on.
  const redisUrl = from.REDIS_URL;
  if (redisUrl && redisObjectOn(from) && manifest.functions.some((fn) => declaresRedis(fn.secrets))) {
    env[REDIS_OBJECT_SWITCH] = "on";
    env[REDIS_OBJECT_URL_VAR] = redisUrl;
    const timeout = from[REDIS_OBJECT_TIMEOUT_VAR];
    if (timeout) {
      if (!/^[1-9]\d*$/.test(timeout)) {
        throw new UserError(
          `${REDIS_OBJECT_TIMEOUT_VAR} must be a whole number of milliseconds (got "${timeout}"): how long a Redis command may wait for its reply`,
        );
      }
      env[REDIS_OBJECT_TIMEOUT_VAR] = timeout;
    }
  }
  const missing = new Map<string, string[]>();
  for (const fn of manifest.functions) {
    for (const name of fn.secrets) {
      const value = name === "DATABASE_URL" ? database.functionUrl : (redis.bindings[name] ?? from[name]);
      if (value === undefined) missing.set(fn.name, [...(missing.get(fn.name) ?? []), name]);
      else env[name] = value;
    }
  }
  return { env, missing };
}

/** WORKYARD_DB_CACHE: `on` (the default) or `off`. */
export function readCacheOn(env: NodeJS.ProcessEnv): boolean {
  const value = env[DB_CACHE_VAR];
  if (value === undefined || value === "" || value === "on") return true;
  if (value === "off") return false;
  throw new UserError(`${DB_CACHE_VAR} must be "on" or "off" (got "${value}"): it turns the database read cache of cached() on or off`);
}

/**
 * WORKYARD_REDIS_OBJECT: `on` (the default) or `off`. On, functions reach a real Redis (REDIS_URL) through the Redis
 * object in workerd; off, through the Redis proxy over HTTP, as without REDIS_URL.
 */
export function redisObjectOn(env: NodeJS.ProcessEnv): boolean {
  const value = env[REDIS_OBJECT_SWITCH];
  if (value === undefined || value === "" || value === "on") return true;
  if (value === "off") return false;
  throw new UserError(
    `${REDIS_OBJECT_SWITCH} must be "on" or "off" (got "${value}"): it sends functions' Redis commands through the Redis object or the proxy`,
  );
}
