/**
 * Decides which real backends the test run uses, and says so. PostgreSQL: TEST_DATABASE_URL when set,
 * else the machine's server on 127.0.0.1:5432 when it answers, else the embedded PGlite default. A real
 * server gets a fresh database for this run, dropped at the end. TEST_DATABASE=embedded forces PGlite.
 * Redis: TEST_REDIS_URL (used as is, never emptied), else a private redis-server when the machine has the binary, else
 * the machine's on 127.0.0.1:6379 when it answers (in an empty logical database claimed for this run, emptied at its
 * end), else the in-memory backend (TEST_REDIS=memory
 * forces it). Under CI=true a missing PostgreSQL or Redis fails the run instead of falling back.
 * Bundles: one bundle cache for the run's test projects (removed at its end), so a function bundled once by Wrangler
 * is not bundled again by every file that builds the same sources (the cache checks each input's content).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { haveRedisServer, PrivateRedis } from "../helpers/redis-servers.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** A migrated-on-demand database for this run, or null for the embedded PGlite. */
    databaseUrl: string | null;
    /** A real Redis for this run, or null for the proxy's in-memory backend. */
    redisUrl: string | null;
    /** The bundle cache the run's test projects share (tests/helpers/test-project.ts). */
    bundleCache: string;
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

const CLAIM_KEY = "workyard-test-run:claimed-by";

/**
 * A logical database (1-15, never the machine's default 0) that holds nothing, claimed for this run with a marker
 * key set only if absent: the functions under test write their own keys (rate-limit counters, cache entries), so
 * the run needs a database of its own, and emptying it at the end removes only what the run wrote. A database with
 * anything in it is left alone.
 */
async function claimEmptyDatabase(base: string): Promise<{ url: string; release(): Promise<void> } | undefined> {
  const client = new Redis(base, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  const me = `pid ${process.pid} at ${new Date().toISOString()}`;
  try {
    for (let db = 15; db >= 1; db--) {
      await client.select(db);
      if ((await client.dbsize()) !== 0 || (await client.set(CLAIM_KEY, me, "NX")) !== "OK") continue;
      if ((await client.dbsize()) !== 1) {
        await client.del(CLAIM_KEY); // something else wrote there at the same moment: not ours
        continue;
      }
      const url = new URL(base);
      url.pathname = `/${db}`;
      return {
        url: url.toString(),
        async release() {
          const done = new Redis(url.toString(), { lazyConnect: true, maxRetriesPerRequest: 1 });
          try {
            await done.connect();
            if ((await done.get(CLAIM_KEY)) === me) await done.flushdb();
          } finally {
            done.disconnect();
          }
        },
      };
    }
    return undefined;
  } finally {
    client.disconnect();
  }
}

async function chooseRedis(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const forced = process.env.TEST_REDIS === "memory";
  if (!forced && process.env.TEST_REDIS_URL) {
    console.log(`[backends] redis: ${process.env.TEST_REDIS_URL} (TEST_REDIS_URL; nothing is emptied there)`);
    project.provide("redisUrl", process.env.TEST_REDIS_URL);
    return undefined;
  }
  // A redis-server of the run's own (the machine's binary, a free loopback port, nothing saved): the machine's Redis
  // and its data are not touched at all.
  if (!forced && haveRedisServer()) {
    const own = await PrivateRedis.onFreePort();
    console.log(`[backends] redis: ${own.url} (a private redis-server for this run, stopped at its end)`);
    project.provide("redisUrl", own.url);
    return () => own.kill();
  }
  const machine = !forced && (await answers("127.0.0.1", 6379));
  const claimed = machine ? await claimEmptyDatabase("redis://127.0.0.1:6379") : undefined;
  if (claimed) {
    console.log(`[backends] redis: ${claimed.url} (an empty database claimed for this run, emptied at its end)`);
    project.provide("redisUrl", claimed.url);
    return () => claimed.release();
  }
  const why = forced
    ? "TEST_REDIS=memory"
    : machine
      ? "every database 1-15 at 127.0.0.1:6379 holds data"
      : "no Redis at 127.0.0.1:6379 and no TEST_REDIS_URL";
  if (!forced && process.env.CI === "true") throw new Error(`[backends] under CI=true the tests need a real Redis: ${why}`);
  console.log(`[backends] redis: in-memory backend (${why})`);
  project.provide("redisUrl", null);
  return undefined;
}

export default async function setup(project: TestProject) {
  const bundles = await mkdtemp(join(tmpdir(), "workyard-test-bundles-"));
  project.provide("bundleCache", bundles);
  const redis = await chooseRedis(project);
  const cleanUp = async () => {
    await redis?.();
    await rm(bundles, { recursive: true, force: true });
  };
  const forced = process.env.TEST_DATABASE === "embedded";
  const admin = forced
    ? undefined
    : (process.env.TEST_DATABASE_URL ?? ((await answers("127.0.0.1", 5432)) ? "postgres://postgres@127.0.0.1:5432/postgres" : undefined));
  if (!admin) {
    const why = forced ? "TEST_DATABASE=embedded" : "no PostgreSQL at 127.0.0.1:5432 and no TEST_DATABASE_URL";
    if (!forced && process.env.CI === "true") throw new Error(`[backends] under CI=true the tests need a real PostgreSQL: ${why}`);
    console.log(`[backends] database: embedded PGlite (${why})`);
    project.provide("databaseUrl", null);
    return cleanUp;
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
    await cleanUp();
  };
}
