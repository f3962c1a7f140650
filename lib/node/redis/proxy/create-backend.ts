/** Picks the backend: a real Redis when a URL is configured, else the embedded in-memory default. */
import type { RedisBackend } from "./backend.ts";
import { MemoryBackend } from "./memory-backend.ts";
import { IoRedisBackend } from "./redis-backend.ts";
import type { RedisBackendOptions } from "./redis-backend.ts";

export interface CreateBackendOptions extends Omit<RedisBackendOptions, "url"> {
  /** REDIS_URL: redis://[user:password@]host:port[/db] or rediss://... Empty or absent: in-memory. */
  redisUrl?: string;
  /** In-memory only: where its keys are kept across restarts (MemoryBackend.restore loads them); absent: nowhere. */
  snapshotFile?: string;
  /** In-memory only: how often a changed store is saved while running. */
  snapshotIntervalMs?: number;
}

export function createBackend(options: CreateBackendOptions = {}): RedisBackend {
  const { redisUrl, snapshotFile, snapshotIntervalMs, ...rest } = options;
  if (redisUrl === undefined || redisUrl.trim() === "") return new MemoryBackend({ snapshotFile, snapshotIntervalMs, log: rest.log });
  let protocol: string;
  try {
    protocol = new URL(redisUrl).protocol;
  } catch (err) {
    throw new Error(`REDIS_URL is not a URL: expected redis://host:port or rediss://host:port`, { cause: err });
  }
  if (protocol !== "redis:" && protocol !== "rediss:") {
    throw new Error(`REDIS_URL must start with redis:// or rediss://, got ${protocol}//`);
  }
  return new IoRedisBackend({ ...rest, url: redisUrl });
}
