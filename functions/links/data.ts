/**
 * The links' data and rules, shared by the REST routes (index.ts) and the GraphQL function (functions/graphql), so
 * that both create, read and delete links the same way: the same validation, rate limit, ownership check, cache
 * invalidation and link.created event.
 */
import type { Context } from "hono";
import { z } from "zod";
import { requireOwner } from "#workyard/auth";
import { invalidate } from "#workyard/cache";
import { db } from "#workyard/db";
import type { Sql } from "#workyard/db";
import { defineEnv } from "#workyard/env";
import { ApiError } from "#workyard/errors";
import { rateLimit } from "#workyard/rate-limit";
import { redis } from "#workyard/redis";

/** The queue binding wrangler.toml declares ([[queues.producers]]); absent where no queue is bound. */
export interface LinkBindings {
  LINK_EVENTS?: Queue<{ type: "link.created"; code: string; url: string; createdAt: string }>;
}

export interface LinkRow {
  code: string;
  url: string;
  clicks: string; // bigint arrives as a string; see toJson
  created_at: Date;
  expires_at: Date | null;
  owner: string | null;
}

/** A link as clients see it. */
export interface LinkJson {
  code: string;
  url: string;
  clicks: number;
  createdAt: string;
  expiresAt: string | null;
}

export const linksEnv = defineEnv(z.object({ CREATE_PER_MINUTE: z.coerce.number().int().positive().default(30) }));

export const codeSchema = z.string().regex(/^[A-Za-z0-9_-]{3,64}$/, "3 to 64 letters, digits, '-' or '_'");
export const createSchema = z.object({
  url: z.url({ protocol: /^https?$/, error: "an absolute http(s) URL" }).max(2048),
  code: codeSchema.optional(),
  expiresInSeconds: z
    .number()
    .int()
    .min(1)
    .max(366 * 24 * 3600)
    .optional(),
});
export type CreateLink = z.infer<typeof createSchema>;
export const MAX_PAGE = 100;
export const listSchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(20),
  before: z.iso.datetime({ offset: true }).optional(),
});

export const targetKey = (code: string) => `links:target:${code}`;
/** Clicks not yet in PostgreSQL: a hash code → count, moved to ROLLING while the cron folds it in. */
export const CLICKS = "links:clicks";
export const ROLLING = "links:clicks:rolling";

const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
function newCode(length = 7): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

export const columns = "code, url, clicks, created_at, expires_at, owner";

export function toJson(link: LinkRow, pendingClicks = 0): LinkJson {
  return {
    code: link.code,
    url: link.url,
    clicks: Number(link.clicks) + pendingClicks,
    createdAt: link.created_at.toISOString(),
    expiresAt: link.expires_at?.toISOString() ?? null,
  };
}

/**
 * Clicks counted in Redis and not yet rolled up into PostgreSQL, for many links in one round trip (0 for each when
 * Redis cannot say).
 */
export async function pendingClicksOf(c: Context, codes: readonly string[]): Promise<number[]> {
  const client = redis(c);
  if (!client || codes.length === 0) return codes.map(() => 0);
  try {
    const pipeline = client.pipeline();
    pipeline.hmget<Record<string, number | null>>(CLICKS, ...codes);
    pipeline.hmget<Record<string, number | null>>(ROLLING, ...codes);
    const [counts, rolling] = (await pipeline.exec()) as [Record<string, number | null> | null, Record<string, number | null> | null];
    return codes.map((code) => Number(counts?.[code] ?? 0) + Number(rolling?.[code] ?? 0));
  } catch {
    return codes.map(() => 0);
  }
}

/** The links with these codes, in one query; missing ones are absent from the map. */
export async function linksByCode(sql: Sql, codes: readonly string[]): Promise<Map<string, LinkRow>> {
  if (codes.length === 0) return new Map();
  // One code (most requests): the plain primary-key lookup, cheaper for PostgreSQL than unpacking a list. Several:
  // one JSON parameter, no array types needed (fetch_types is off behind PgBouncer).
  const rows =
    codes.length === 1
      ? await sql<LinkRow[]>`select ${sql.unsafe(columns)} from links where code = ${codes[0] ?? ""}`
      : await sql<LinkRow[]>`
          select ${sql.unsafe(columns)} from links where code in (select jsonb_array_elements_text(${sql.json([...codes])}))`;
  return new Map(rows.map((r) => [r.code, r]));
}

/** A page of links, newest first; `next` is the `before` of the next page, or null after the last. */
export async function listLinks(
  sql: Sql,
  { limit, before, owner }: { limit: number; before?: string | undefined; owner?: string | undefined },
): Promise<{ links: LinkRow[]; next: string | null }> {
  const rows = await sql<LinkRow[]>`
    select ${sql.unsafe(columns)} from links
    where true ${before ? sql`and created_at < ${before}` : sql``} ${owner ? sql`and owner = ${owner}` : sql``}
    order by created_at desc, code limit ${limit}`;
  const last = rows.at(-1);
  return { links: rows, next: rows.length === limit && last ? last.created_at.toISOString() : null };
}

/** Limits link creation per client IP (CREATE_PER_MINUTE), in the same bucket for every way in: 429 beyond it. */
export async function limitCreation(c: Context): Promise<void> {
  await rateLimit({ limit: (ctx) => linksEnv(ctx).CREATE_PER_MINUTE, window: "1 m", prefix: "links:create" })(c, async () => {});
}

/**
 * Creates a link owned by the caller (`c.get("principal")`, set by requireAuth or authenticate). A taken code the
 * client chose is 409; a generated one that collides is tried again. The link.created event is stored before this
 * returns: a link is never kept without its event.
 */
export async function createLink(c: Context, { url, code, expiresInSeconds }: CreateLink): Promise<LinkRow> {
  const sql = db(c);
  const expiresAt = expiresInSeconds === undefined ? null : new Date(Date.now() + expiresInSeconds * 1000);
  // A generated code can collide; try a few before giving up. A code the client chose cannot be retried.
  for (let attempt = 0; attempt < 5; attempt++) {
    const [link] = await sql<LinkRow[]>`
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
      return link;
    }
    if (code) throw new ApiError(409, `The code "${code}" is taken`, { code: "code_taken" });
  }
  throw new ApiError(503, "Could not find a free code; try again", { headers: { "retry-after": "1" } });
}

/** Deletes a link: its owner, or an admin (403 otherwise); 404 when there is none. */
export async function deleteLink(c: Context, code: string): Promise<void> {
  const sql = db(c);
  const [link] = await sql<{ owner: string | null }[]>`select owner from links where code = ${code}`;
  if (!link) throw new ApiError(404, `No link "${code}"`);
  requireOwner(c, link.owner);
  const deleted = await sql`delete from links where code = ${code} and owner is not distinct from ${link.owner}`;
  if (deleted.count === 0) throw new ApiError(404, `No link "${code}"`);
  await invalidate(c, targetKey(code));
}
