/**
 * links: a small link shortener on PostgreSQL, with Redis in front.
 *   POST   /            {url, code?, expiresInSeconds?}  create (201); a taken code is 409; rate limited per IP.
 *                                                        Needs a signed-in user or an API key for "links" (401).
 *                                                        Sends a "link.created" event to the link-events queue
 *                                                        (functions/webhooks delivers it) before it answers
 *   GET    /            ?limit&before&owner=me           list, newest first; owner=me: the caller's own (signed in)
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
import { authenticate, requireAuth } from "#workyard/auth";
import { cached } from "#workyard/cache";
import { database, db, withDatabase } from "#workyard/db";
import { ApiError } from "#workyard/errors";
import { createRoute, errorResponses, jsonBody, jsonResponse, security, z } from "#workyard/openapi";
import { routePrefix } from "#workyard/route";
import { rateLimit } from "#workyard/rate-limit";
import { redis, redisFromEnv } from "#workyard/redis";
import { withCrons } from "#workyard/scheduled";
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

const app = createApp({
  api: {
    title: "links",
    description: "A link shortener: create short codes for URLs (signed in, or with an API key), follow them, read their stats.",
  },
});
app.use(database());

/** Who may write: a signed-in user, or a machine client with an API key made for this function. */
const signedIn = requireAuth({ apiKeysFor: "links" });

const exampleLink = {
  code: "docs-example",
  url: "https://example.com/a/long/page",
  clicks: 0,
  createdAt: "2026-12-05T17:00:00.000Z",
  expiresAt: null,
};
const linkSchema = z
  .object({
    code: z.string(),
    url: z.string(),
    clicks: z.number().int().openapi({ description: "Redirects followed (the last minute's may still be on their way)" }),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
  })
  .openapi("Link");
const codeParam = z.object({ code: codeSchema.openapi({ example: exampleLink.code, description: "The link's code" }) });
const noLink = { description: "No link with this code", message: `No link "${exampleLink.code}"` };

app.openapi(
  createRoute({
    method: "post",
    path: "/",
    tags: ["links"],
    summary: "Create a link",
    description: 'Sends a "link.created" event to the link-events queue (functions/webhooks delivers it) before it answers.',
    security: security.userOrApiKey,
    middleware: [signedIn, rateLimit({ limit: (c) => linksEnv(c).CREATE_PER_MINUTE, window: "1 m", prefix: "links:create" })],
    request: {
      body: jsonBody(
        createSchema,
        { url: exampleLink.url, code: exampleLink.code, expiresInSeconds: 86400 },
        "code: chosen, or generated when left out",
      ),
    },
    responses: {
      201: {
        ...jsonResponse(linkSchema, "The link; Location is its address", { ...exampleLink, expiresAt: "2026-12-06T17:00:00.000Z" }),
        headers: { location: { schema: { type: "string" }, example: `/links/${exampleLink.code}` } },
      },
      ...errorResponses({
        409: { description: "The code is taken", code: "code_taken", message: `The code "${exampleLink.code}" is taken` },
        429: {
          description: "Too many links from this client this minute (CREATE_PER_MINUTE)",
          message: "Too many requests: 30 per 1 m; try again in 42 s",
        },
        503: { description: "No free code found after a few tries; try again", message: "Could not find a free code; try again" },
      }),
    },
  }),
  async (c) => {
    const link = await createLink(c, c.req.valid("json"));
    return c.json(toJson(link), 201, { location: `${routePrefix(c)}/${link.code}` });
  },
);

app.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["links"],
    summary: "List links, newest first",
    request: {
      query: listSchema.extend({
        limit: listSchema.shape.limit.openapi({ description: "At most this many (1-100)", example: 20 }),
        before: listSchema.shape.before.openapi({ description: "Only links created before this time: the previous page's `next`" }),
        owner: z.enum(["me"]).optional().openapi({ description: "`me`: only the signed-in caller's links (needs a token or an API key)" }),
      }),
    },
    responses: {
      200: jsonResponse(
        z.object({
          links: z.array(linkSchema),
          next: z.string().nullable().openapi({ description: "`before` for the next page; null on the last" }),
        }),
        "A page of links",
        { links: [exampleLink], next: null },
      ),
    },
  }),
  async (c) => {
    const { owner, ...page } = c.req.valid("query");
    const mine = owner === "me" ? (await authenticate(c, { apiKeysFor: "links" })).subject : undefined;
    const { links, next } = await listLinks(db(c), { ...page, owner: mine });
    // With the clicks still in Redis (one read for the page), as the stats route counts them.
    const pending = await pendingClicksOf(
      c,
      links.map((r) => r.code),
    );
    return c.json({ links: links.map((r, i) => toJson(r, pending[i])), next }, 200);
  },
);

app.openapi(
  createRoute({
    method: "get",
    path: "/{code}",
    tags: ["links"],
    summary: "Follow a link",
    description: "A redirect to the link's URL; the click is counted after the answer (not for HEAD).",
    request: { params: codeParam },
    responses: {
      302: { description: "To the link's URL", headers: { location: { schema: { type: "string" }, example: exampleLink.url } } },
      ...errorResponses({
        404: noLink,
        410: { description: "The link has expired", code: "expired", message: `The link "${exampleLink.code}" has expired` },
      }),
    },
  }),
  async (c) => {
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
  },
);

app.openapi(
  createRoute({
    method: "get",
    path: "/{code}/stats",
    tags: ["links"],
    summary: "A link and its click count",
    request: { params: codeParam },
    responses: { 200: jsonResponse(linkSchema, "The link", { ...exampleLink, clicks: 3 }), ...errorResponses({ 404: noLink }) },
  }),
  async (c) => {
    const { code } = c.req.valid("param");
    const sql = db(c);
    const [link] = await sql<LinkRow[]>`select ${sql.unsafe(columns)} from links where code = ${code}`;
    if (!link) throw new ApiError(404, `No link "${code}"`);
    const [pending = 0] = await pendingClicksOf(c, [code]);
    return c.json(toJson(link, pending), 200);
  },
);

app.openapi(
  createRoute({
    method: "delete",
    path: "/{code}",
    tags: ["links"],
    summary: "Delete a link (its owner, or an admin)",
    security: security.userOrApiKey,
    middleware: [signedIn],
    request: { params: codeParam },
    responses: {
      204: { description: "Deleted" },
      ...errorResponses({ 403: "Not the link's owner (nor an admin), or an API key made for another function", 404: noLink }),
    },
  }),
  async (c) => {
    await deleteLink(c, c.req.valid("param").code);
    return c.body(null, 204);
  },
);

/** Moves click counts from Redis into PostgreSQL in one statement. A leftover from a failed run goes first. */
async function rollUpClicks(_event: ScheduledController, bindings: unknown) {
  const client = redisFromEnv(bindings);
  if (!client) return;
  // One roll-up at a time across everything sharing this Redis: two that overlapped (workyard's scheduler on one
  // runtime, Deno.cron or a hand trigger on another) would both add the same ROLLING counts. The lock outlives a
  // crashed run by a minute at most; ROLLING itself stays for the next run to finish.
  const owner = crypto.randomUUID();
  if ((await client.set(ROLLUP_LOCK, owner, { nx: true, ex: 60 })) !== "OK") {
    console.log("links: another click roll-up is running; this one is skipped");
    return;
  }
  try {
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
  } finally {
    // Only our own lock (one that expired and was taken by another run stays).
    if ((await client.get(ROLLUP_LOCK)) === owner) await client.del(ROLLUP_LOCK);
  }
}

/** Held while one roll-up runs (rollUpClicks). */
const ROLLUP_LOCK = "links:clicks:rollup-lock";

/** Deletes links whose expiry has passed. */
async function expire(_event: ScheduledController, bindings: unknown) {
  const deleted = await withDatabase(bindings as Record<string, unknown>, (sql) => sql`delete from links where expires_at <= now()`);
  console.log(`links: deleted ${deleted.count} expired link(s)`);
}

export default withCrons(app, { "* * * * *": rollUpClicks, "*/5 * * * *": expire });
