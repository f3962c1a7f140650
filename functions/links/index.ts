/**
 * links: a small link shortener on PostgreSQL, with Redis in front.
 *   POST   /            {url, code?, expiresInSeconds?}  create (201); a taken code is 409; rate limited per IP.
 *                                                        Needs a signed-in user or an API key for "links" (401).
 *                                                        Sends a "link.created" event to the link-events queue
 *                                                        (functions/webhooks delivers it) before it answers
 *   GET    /            ?limit&before                    list, newest first
 *   GET    /:code                                        redirect (302), or 410 once expired. Served from the
 *                                                        Redis cache when it can be (x-cache: hit), and the click
 *                                                        is counted in Redis after the response
 *   GET    /:code/stats                                  the link and its click count
 *   DELETE /:code                                        delete (204): its owner, or an admin (403 otherwise)
 *   cron "* * * * *"                                     move click counts from Redis into PostgreSQL
 *   cron "*\/5 * * * *"                                   delete expired links
 */
import type { Context } from "hono";
import { createApp } from "#workyard/app";
import { requireAuth } from "#workyard/auth";
import { cached } from "#workyard/cache";
import { database, db, withDatabase } from "#workyard/db";
import { ApiError } from "#workyard/errors";
import { routePrefix } from "#workyard/route";
import { rateLimit } from "#workyard/rate-limit";
import { redis, redisFromEnv } from "#workyard/redis";
import { withCrons } from "#workyard/scheduled";
import { validate } from "#workyard/validate";
import { z } from "zod";
import {
  CLICKS,
  codeSchema,
  columns,
  createLink,
  createSchema,
  deleteLink,
  linksEnv,
  listLinks,
  listSchema,
  pendingClicksOf,
  ROLLING,
  targetKey,
  toJson,
} from "./data.ts";
import type { LinkRow } from "./data.ts";

/** What the redirect needs, as cached in Redis. */
interface Target {
  url: string;
  expiresAt: number | null;
}

const params = validate("param", z.object({ code: codeSchema }));

const CACHE_TTL_SECONDS = 300;

/** Counts a click in Redis (one fast write); without Redis, in PostgreSQL. Runs after the response. */
async function countClick(c: Context, code: string): Promise<void> {
  const client = redis(c);
  if (client) {
    try {
      await client.hincrby(CLICKS, code, 1);
      return;
    } catch {
      // Redis is down: fall through and count in PostgreSQL
    }
  }
  await db(c)`update links set clicks = clicks + 1 where code = ${code}`;
}

/**
 * The URL as a Location header may carry it: every character outside visible ASCII (controls such as U+0085, spaces,
 * non-ASCII) percent-encoded as UTF-8, the rest exactly as stored.
 */
const safeLocation = (url: string) => url.replace(/[^\x21-\x7e]/gu, (ch) => encodeURIComponent(ch));

const app = createApp();
app.use(database());

/** Who may write: a signed-in user, or a machine client with an API key made for this function. */
const signedIn = requireAuth({ apiKeysFor: "links" });

app.post(
  "/",
  signedIn,
  rateLimit({ limit: (c) => linksEnv(c).CREATE_PER_MINUTE, window: "1 m", prefix: "links:create" }),
  validate("json", createSchema),
  async (c) => {
    const link = await createLink(c, c.req.valid("json"));
    return c.json(toJson(link), 201, { location: `${routePrefix(c)}/${link.code}` });
  },
);

app.get("/", validate("query", listSchema), async (c) => {
  const { links, next } = await listLinks(db(c), c.req.valid("query"));
  return c.json({ links: links.map((r) => toJson(r)), next });
});

app.get("/:code", params, async (c) => {
  const { code } = c.req.valid("param");
  const target = await cached<Target>(c, targetKey(code), CACHE_TTL_SECONDS, async () => {
    const [row] = await db(c)<{ url: string; expires_at: Date | null }[]>`select url, expires_at from links where code = ${code}`;
    return row ? { url: row.url, expiresAt: row.expires_at?.getTime() ?? null } : undefined;
  });
  if (!target) throw new ApiError(404, `No link "${code}"`);
  if (target.expiresAt !== null && target.expiresAt <= Date.now())
    throw new ApiError(410, `The link "${code}" has expired`, { code: "expired" });
  // A HEAD (a link checker, a preview) is not a click.
  if (c.req.method !== "HEAD") {
    c.executionCtx.waitUntil(countClick(c, code).catch((err: unknown) => console.error(`click not counted for ${code}`, err)));
  }
  return c.redirect(safeLocation(target.url), 302);
});

app.get("/:code/stats", params, async (c) => {
  const { code } = c.req.valid("param");
  const sql = db(c);
  const [link] = await sql<LinkRow[]>`select ${sql.unsafe(columns)} from links where code = ${code}`;
  if (!link) throw new ApiError(404, `No link "${code}"`);
  const [pending = 0] = await pendingClicksOf(c, [code]);
  return c.json(toJson(link, pending));
});

app.delete("/:code", signedIn, params, async (c) => {
  await deleteLink(c, c.req.valid("param").code);
  return c.body(null, 204);
});

/** Moves click counts from Redis into PostgreSQL in one statement. A leftover from a failed run goes first. */
async function rollUpClicks(_event: ScheduledController, bindings: unknown) {
  const client = redisFromEnv(bindings);
  if (!client) return;
  if ((await client.exists(ROLLING)) === 0) {
    if ((await client.exists(CLICKS)) === 0) return;
    await client.rename(CLICKS, ROLLING);
  }
  const counts = (await client.hgetall<Record<string, number>>(ROLLING)) ?? {};
  const codes = Object.keys(counts);
  if (codes.length > 0) {
    // One JSON parameter ({"code": count, ...}): no array types needed (fetch_types is off behind PgBouncer).
    await withDatabase(
      bindings as Record<string, unknown>,
      (sql) =>
        sql`update links set clicks = links.clicks + c.n::bigint
          from jsonb_each_text(${sql.json(counts)}) as c(code, n) where links.code = c.code`,
    );
  }
  await client.del(ROLLING);
  console.log(`links: rolled up clicks of ${codes.length} link(s)`);
}

/** Deletes links whose expiry has passed. */
async function expire(_event: ScheduledController, bindings: unknown) {
  const deleted = await withDatabase(bindings as Record<string, unknown>, (sql) => sql`delete from links where expires_at <= now()`);
  console.log(`links: deleted ${deleted.count} expired link(s)`);
}

export default withCrons(app, { "* * * * *": rollUpClicks, "*/5 * * * *": expire });
