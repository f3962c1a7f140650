/**
 * links' click roll-up (the "* * * * *" cron) run twice at once, as two runtimes sharing one Redis can (workyard's
 * scheduler on workerd and Deno.cron or a hand trigger on Deno): the clicks are added to PostgreSQL once. The
 * function's own module on Node, with the Redis proxy (in-memory backend) and a database of the test's own.
 */
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { startRedisService } from "../../lib/node/redis/service.ts";
import type { RedisService } from "../../lib/node/redis/service.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";

interface Scheduled {
  scheduled(controller: unknown, env: unknown, ctx: unknown): Promise<void>;
}

let db: FreshDatabase;
let redis: RedisService;

beforeAll(async () => {
  db = await freshDatabase();
  await migrateUp(db.url, projectPaths().migrations);
  redis = await startRedisService({ redisUrl: undefined, port: 0, log: () => {} });
});
afterAll(async () => {
  await redis?.stop();
  await db?.dispose();
});

describe("links: the click roll-up", () => {
  it("adds pending clicks once when two roll-ups run at the same time", async () => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await sql`insert into links (code, url) values ('rollup-once', 'https://example.com/r')`;
      const { UPSTASH_REDIS_REST_URL: url = "", UPSTASH_REDIS_REST_TOKEN: token = "" } = redis.bindings;
      // Three clicks pending in Redis, as the redirect leaves them.
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify(["HINCRBY", "links:clicks", "rollup-once", "3"]),
      });
      expect(res.status).toBe(200);
      const links = (await import(join(projectPaths().functions, "links", "index.ts"))) as { default: Scheduled };
      const env = { ...redis.bindings, DATABASE_URL: db.url, AUTH_JWT_SECRET: "x".repeat(40) };
      const ctx = { waitUntil: () => {}, passThroughOnException: () => {} };
      const fire = () => links.default.scheduled({ cron: "* * * * *", scheduledTime: Date.now(), noRetry() {} }, env, ctx);
      await Promise.all([fire(), fire(), fire()]);
      await fire(); // one more later finds nothing left
      const [row] = await sql<{ clicks: string }[]>`select clicks::text from links where code = 'rollup-once'`;
      expect(row?.clicks).toBe("3");
    } finally {
      await sql.end();
    }
  });
});
