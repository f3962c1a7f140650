/**
 * What a function host's read cache publishes on the `workyard.db-cache` diagnostics channel: one event per cached
 * read (hit, miss, or bypass when the cache could not be used) and one per invalidation. The record the function's
 * worker makes of the invocation counts them (lib/workers/trace/capture.ts), and the collector keeps /metrics from them.
 */

export const DB_CACHE_CHANNEL = "workyard.db-cache";

/** How a cached read was answered: from the cache, from the database, or from the database without the cache. */
export const DB_CACHE_READS = ["hit", "miss", "bypass"] as const;
export type DbCacheRead = (typeof DB_CACHE_READS)[number];

/** Where an invalidation came from: a write through this host's pool, or a notification from another. */
export const DB_CACHE_INVALIDATIONS = ["local", "remote"] as const;
export type DbCacheInvalidation = (typeof DB_CACHE_INVALIDATIONS)[number];

export type DbCacheEvent = { read: DbCacheRead } | { invalidated: DbCacheInvalidation; count: number };

/** Per-invocation counts, as the trace record carries them. */
export interface DbCacheCounts {
  hit?: number;
  miss?: number;
  bypass?: number;
  local?: number;
  remote?: number;
}

/** In a read's tables: it may read any table (its tables are unknown). In a notification: every table was written. */
export const ANY_TABLE = "*";

/** The PostgreSQL notification channel hosts tell each other about writes on. */
export const DB_CACHE_NOTIFY_CHANNEL = "workyard_db_cache";
