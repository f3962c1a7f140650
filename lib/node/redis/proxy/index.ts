/** The Redis HTTP proxy (Upstash REST protocol) and its backends; see server.ts for the routes. */
export { startRedisProxy } from "./server.ts";
export type { RedisProxy, RedisProxyOptions, RedisProxyStats } from "./server.ts";
export { createBackend } from "./create-backend.ts";
export type { CreateBackendOptions } from "./create-backend.ts";
export type { RedisBackend, RedisArgs, RedisReply, RedisOutcome, PubSubEvent, Subscription, SubscribeRequest } from "./backend.ts";
export { MemoryBackend, MEMORY_LABEL, SNAPSHOT_INTERVAL_MS } from "./memory-backend.ts";
export type { MemoryBackendOptions } from "./memory-backend.ts";
export { IoRedisBackend, redactRedisUrl } from "./redis-backend.ts";
export type { RedisBackendOptions } from "./redis-backend.ts";
export { BackendUnavailableError, ProxyHttpError, RedisReplyError } from "./errors.ts";
