/**
 * Redis for functions, in `npm start` and `npm run dev`: the project's Upstash-compatible HTTP proxy in this
 * process, in front of REDIS_URL or the in-memory backend, bound into functions that declare
 * UPSTASH_REDIS_REST_URL / UPSTASH_REDIS_REST_TOKEN. `npm start` keeps the in-memory backend's keys in
 * .workyard/redis-memory.json (memoryFile); `npm run dev` and the standalone proxy keep them nowhere.
 */
import { randomBytes } from "node:crypto";
import { MemoryBackend, createBackend, startRedisProxy } from "./proxy/index.ts";
import type { RedisProxyStats } from "./proxy/index.ts";

export interface RedisInfo {
  kind: "redis" | "memory";
  /** What the proxy talks to, for people. */
  label: string;
  proxyUrl: string;
}

export interface RedisService {
  backend: RedisInfo;
  /** What functions that declare these names get. */
  bindings: Record<string, string>;
  /** The proxy's own counters; absent when the proxy runs as a process of its own (REDIS_PROXY_URL). */
  stats?: () => RedisProxyStats;
  stop(): Promise<void>;
}

export interface RedisServiceOptions {
  /** A real Redis; without it, the in-memory backend. */
  redisUrl: string | undefined;
  /** The proxy's loopback port; 0 (default) picks a free one. */
  port?: number;
  /** The proxy's loopback address; default 127.0.0.1. */
  host?: string;
  /** The bearer token clients present; default a random one per start. */
  token?: string;
  /**
   * Without redisUrl: the file that keeps the in-memory backend's keys across restarts (restored here, saved at stop
   * and periodically); absent: they last as long as the service.
   */
  memoryFile?: string;
  /** How often the in-memory backend saves memoryFile when something changed; default 30 s. */
  memorySaveIntervalMs?: number;
  log: (line: string) => void;
}

/** Starts the backend and the proxy in front of it. */
export async function startRedisService({
  redisUrl,
  port = 0,
  host,
  token = randomBytes(24).toString("base64url"),
  memoryFile,
  memorySaveIntervalMs,
  log,
}: RedisServiceOptions): Promise<RedisService> {
  const backend = createBackend({
    redisUrl: redisUrl || undefined,
    snapshotFile: memoryFile,
    snapshotIntervalMs: memorySaveIntervalMs,
    log: (line) => log(`[redis] ${line}`),
  });
  try {
    if (backend instanceof MemoryBackend) await backend.restore();
    const proxy = await startRedisProxy({ host, port, token, backend, log: (line) => log(`[redis-proxy] ${line}`) });
    return {
      backend: { kind: redisUrl ? "redis" : "memory", label: backend.label, proxyUrl: proxy.url },
      bindings: { UPSTASH_REDIS_REST_URL: proxy.url, UPSTASH_REDIS_REST_TOKEN: token },
      stats: () => proxy.stats(),
      async stop() {
        // The proxy first (it finishes the requests in flight), so that the snapshot the backend saves has their writes.
        await proxy.stop();
        await backend.close();
      },
    };
  } catch (err) {
    await backend.close();
    throw err;
  }
}
