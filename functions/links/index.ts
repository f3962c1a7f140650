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
import { z } from "zod";
import { createApp } from "#workyard/app";
import { requireAuth, requireOwner } from "#workyard/auth";
import { cached, invalidate } from "#workyard/cache";
import { database, db, withDatabase } from "#workyard/db";
import { defineEnv } from "#workyard/env";
import { ApiError } from "#workyard/errors";
import { routePrefix } from "#workyard/route";
import { rateLimit } from "#workyard/rate-limit";
import { redis, redisFromEnv } from "#workyard/redis";
import { withCrons } from "#workyard/scheduled";
import { validate } from "#workyard/validate";

/** The queue binding wrangler.toml declares ([[queues.producers]]); absent where no queue is bound. */
interface LinkBindings {
  LINK_EVENTS?: Queue<{ type: "link.created"; code: string; url: string; createdAt: string }>;
}

interface Link {
  code: string;
  url: string;
  clicks: string; // bigint arrives as a string; see toJson
  created_at: Date;
  expires_at: Date | null;
}

/** What the redirect needs, as cached in Redis. */
interface Target {
  url: string;
  expiresAt: number | null;
}

const env = defineEnv(z.object({ CREATE_PER_MINUTE: z.coerce.number().int().positive().default(30) }));

const codeSchema = z.string().regex(/^[A-Za-z0-9_-]{3,64}$/, "3 to 64 letters, digits, '-' or '_'");
const createSchema = z.object({
  url: z.url({ protocol: /^https?$/, error: "an absolute http(s) URL" }).max(2048),
  code: codeSchema.optional(),
  expiresInSeconds: z
    .number()
    .int()
    .min(1)
    .max(366 * 24 * 3600)
    .optional(),
});
const listSchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  before: z.iso.datetime({ offset: true }).optional(),
});
const params = validate("param", z.object({ code: codeSchema }));

const CACHE_TTL_SECONDS = 300;
const targetKey = (code: string) => `links:target:${code}`;
/** Clicks not yet in PostgreSQL: a hash code → count, moved to ROLLING while the cron folds it in. */
const CLICKS = "links:clicks";
const ROLLING = "links:clicks:rolling";

const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
function newCode(length = 7): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

const columns = "code, url, clicks, created_at, expires_at";

function toJson(link: Link, pendingClicks = 0) {
  return {
    code: link.code,
    url: link.url,
    clicks: Number(link.clicks) + pendingClicks,
    createdAt: link.created_at.toISOString(),
    expiresAt: link.expires_at?.toISOString() ?? null,
  };
}

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

/** Clicks counted in Redis and not yet rolled up into PostgreSQL (0 when Redis cannot say). */
async function pendingClicks(c: Context, code: string): Promise<number> {
  try {
    const counts = await redis(c)?.hmget<Record<string, number | null>>(CLICKS, code);
    const rolling = await redis(c)?.hmget<Record<string, number | null>>(ROLLING, code);
    return Number(counts?.[code] ?? 0) + Number(rolling?.[code] ?? 0);
  } catch {
    return 0;
  }
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
  rateLimit({ limit: (c) => env(c).CREATE_PER_MINUTE, window: "1 m", prefix: "links:create" }),
  validate("json", createSchema),
  async (c) => {
    const { url, code, expiresInSeconds } = c.req.valid("json");
    const sql = db(c);
    const expiresAt = expiresInSeconds === undefined ? null : new Date(Date.now() + expiresInSeconds * 1000);
    // A generated code can collide; try a few before giving up. A code the client chose cannot be retried.
    for (let attempt = 0; attempt < 5; attempt++) {
      const [link] = await sql<Link[]>`
        insert into links (code, url, expires_at, owner) values (${code ?? newCode()}, ${url}, ${expiresAt}, ${c.get("principal").subject})
        on conflict (code) do nothing
        returning ${sql.unsafe(columns)}`;
      if (link) {
        await invalidate(c, targetKey(link.code)); // a code deleted and created again must not redirect to the old URL
        // Stored durably before the answer: a 201 means the event will be delivered (at least once). A send that
        // fails takes the link back, so the client's retry does not leave a link without its event.
        const event = { type: "link.created" as const, code: link.code, url: link.url, createdAt: link.created_at.toISOString() };
        await (c.env as LinkBindings).LINK_EVENTS?.send(event).catch(async (err: unknown) => {
          await sql`delete from links where code = ${link.code}`.catch(() => {});
          throw err;
        });
        return c.json(toJson(link), 201, { location: `${routePrefix(c)}/${link.code}` });
      }
      if (code) throw new ApiError(409, `The code "${code}" is taken`, { code: "code_taken" });
    }
    throw new ApiError(503, "Could not find a free code; try again", { headers: { "retry-after": "1" } });
  },
);

app.get("/", validate("query", listSchema), async (c) => {
  const { limit, before } = c.req.valid("query");
  const sql = db(c);
  const rows = await sql<Link[]>`
    select ${sql.unsafe(columns)} from links
    ${before ? sql`where created_at < ${before}` : sql``}
    order by created_at desc, code limit ${limit}`;
  const last = rows.at(-1);
  return c.json({ links: rows.map((r) => toJson(r)), next: rows.length === limit && last ? last.created_at.toISOString() : null });
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
  const [link] = await sql<Link[]>`select ${sql.unsafe(columns)} from links where code = ${code}`;
  if (!link) throw new ApiError(404, `No link "${code}"`);
  return c.json(toJson(link, await pendingClicks(c, code)));
});

app.delete("/:code", signedIn, params, async (c) => {
  const { code } = c.req.valid("param");
  const sql = db(c);
  const [link] = await sql<{ owner: string | null }[]>`select owner from links where code = ${code}`;
  if (!link) throw new ApiError(404, `No link "${code}"`);
  requireOwner(c, link.owner);
  const deleted = await sql`delete from links where code = ${code} and owner is not distinct from ${link.owner}`;
  if (deleted.count === 0) throw new ApiError(404, `No link "${code}"`);
  await invalidate(c, targetKey(code));
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
