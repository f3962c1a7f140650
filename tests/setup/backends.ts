/**
 * Decides which real backends the test run uses, and says so. PostgreSQL: TEST_DATABASE_URL when set,
 * else the machine's server on 127.0.0.1:5432 when it answers, else the embedded PGlite default. A real
 * server gets a fresh database for this run, dropped at the end. TEST_DATABASE=embedded forces PGlite.
 * Redis: TEST_REDIS_URL, else the machine's on 127.0.0.1:6379 when it answers (in a logical database of its own
 * for this run, emptied before and after: rate-limit counters of an earlier run must not leak into this one), else
 * the in-memory backend (TEST_REDIS=memory forces it).
 */
import { connect } from "node:net";
import { Redis } from "ioredis";
import postgres from "postgres";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** A migrated-on-demand database for this run, or null for the embedded PGlite. */
    databaseUrl: string | null;
    /** A real Redis for this run, or null for the proxy's in-memory backend. */
    redisUrl: string | null;
  }
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 }, () => {
      socket.end();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
    socket.on("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function chooseRedis(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const forced = process.env.TEST_REDIS === "memory";
  const machine = !forced && !process.env.TEST_REDIS_URL && (await answers("127.0.0.1", 6379));
  // Databases 1-15 by process id: not the machine's default database 0.
  const url = forced ? undefined : (process.env.TEST_REDIS_URL ?? (machine ? `redis://127.0.0.1:6379/${1 + (process.pid % 15)}` : undefined));
  const why = forced ? "TEST_REDIS=memory" : "no Redis at 127.0.0.1:6379 and no TEST_REDIS_URL";
  console.log(url ? `[backends] redis: ${url}` : `[backends] redis: in-memory backend (${why})`);
  project.provide("redisUrl", url ?? null);
  if (!machine || !url) return undefined;
  const flush = async () => {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      await client.flushdb();
    } finally {
      client.disconnect();
    }
  };
  await flush();
  return flush;
}

export default async function setup(project: TestProject) {
  const flushRedis = await chooseRedis(project);
  const forced = process.env.TEST_DATABASE === "embedded";
  const admin = forced
    ? undefined
    : (process.env.TEST_DATABASE_URL ?? ((await answers("127.0.0.1", 5432)) ? "postgres://postgres@127.0.0.1:5432/postgres" : undefined));
  if (!admin) {
    const why = forced ? "TEST_DATABASE=embedded" : "no PostgreSQL at 127.0.0.1:5432 and no TEST_DATABASE_URL";
    console.log(`[backends] database: embedded PGlite (${why})`);
    project.provide("databaseUrl", null);
    return flushRedis;
  }
  const name = `workyard_test_${process.pid}_${Date.now().toString(36)}`;
  const sql = postgres(admin, { max: 1, onnotice: () => {} });
  await sql.unsafe(`create database ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  console.log(`[backends] database: PostgreSQL ${url.host}${url.pathname}`);
  project.provide("databaseUrl", url.toString());
  return async () => {
    await sql.unsafe(`drop database if exists ${name} with (force)`);
    await sql.end();
    await flushRedis?.();
  };
}
