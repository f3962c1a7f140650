/** Isolation for tests: an empty database of their own, and Redis keys of their own, each cleaned up after. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { inject } from "vitest";
import { startEmbeddedPostgres } from "../../lib/node/data/embedded-postgres.ts";

export interface FreshDatabase {
  url: string;
  kind: "postgres" | "embedded-pglite";
  dispose(): Promise<void>;
}

export async function freshDatabase(): Promise<FreshDatabase> {
  const base = inject("databaseUrl");
  if (!base) {
    const dir = await mkdtemp(join(tmpdir(), "workyard-pglite-"));
    const pg = await startEmbeddedPostgres(dir);
    return {
      url: pg.url,
      kind: "embedded-pglite",
      dispose: async () => (await pg.stop(), await rm(dir, { recursive: true, force: true })),
    };
  }
  const name = `workyard_fresh_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    kind: "postgres",
    dispose: async () => {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** Anything that runs one Redis command: an ioredis client's `call`, the proxy's backend, a fetch to the proxy. */
export type RedisCommand = (args: string[]) => Promise<unknown>;

export interface TestKeys {
  /** Every key of this test starts with it. */
  prefix: string;
  /** A key of this test: `${prefix}${name}`. */
  key(name: string): string;
  /** Deletes every key under the prefix (SCAN, then DEL in batches); answers how many were deleted. */
  cleanup(): Promise<number>;
}

/**
 * Unique Redis keys for one test (as redis-js's `keygen()`), on a shared Redis: the test touches only keys it made,
 * and `cleanup` removes exactly those.
 */
export function testKeys(label: string, run: RedisCommand): TestKeys {
  const prefix = `workyard-test:${label}:${crypto.randomUUID()}:`;
  return {
    prefix,
    key: (name) => `${prefix}${name}`,
    async cleanup() {
      let cursor = "0";
      let deleted = 0;
      do {
        const [next, found] = (await run(["scan", cursor, "match", `${prefix}*`, "count", "500"])) as [unknown, unknown[]];
        cursor = String(next);
        if (found.length > 0) deleted += Number(await run(["del", ...found.map(String)]));
      } while (cursor !== "0");
      return deleted;
    },
  };
}
