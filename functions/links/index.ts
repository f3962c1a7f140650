/**
 * links: a small link shortener on PostgreSQL.
 *   POST   /            {url, code?, expiresInSeconds?}  create (201); a taken code is 409
 *   GET    /            ?limit&before                    list, newest first
 *   GET    /:code                                        redirect (302), or 410 once expired; the click
 *                                                        is counted after the response
 *   GET    /:code/stats                                  the link and its click count
 *   DELETE /:code                                        delete (204)
 *   cron "*\/5 * * * *"                                   delete expired links (wrangler.toml)
 */
import { z } from "zod";
import { createApp } from "../../lib/worker/app.ts";
import { database, db, withDatabase } from "../../lib/worker/db.ts";
import { ApiError } from "../../lib/worker/errors.ts";
import { withCrons } from "../../lib/worker/scheduled.ts";
import { validate } from "../../lib/worker/validate.ts";

interface Link {
  code: string;
  url: string;
  clicks: string; // bigint arrives as a string; see toJson
  created_at: Date;
  expires_at: Date | null;
}

const codeSchema = z.string().regex(/^[A-Za-z0-9_-]{3,64}$/, "3 to 64 letters, digits, '-' or '_'");
const createSchema = z.object({
  url: z.url({ protocol: /^https?$/, error: "an absolute http(s) URL" }).max(2048),
  code: codeSchema.optional(),
  expiresInSeconds: z.number().int().min(1).max(366 * 24 * 3600).optional(),
});
const listSchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  before: z.iso.datetime({ offset: true }).optional(),
});

const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
function newCode(length = 7): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

function toJson(link: Link) {
  return {
    code: link.code,
    url: link.url,
    clicks: Number(link.clicks),
    createdAt: link.created_at.toISOString(),
    expiresAt: link.expires_at?.toISOString() ?? null,
  };
}

const columns = "code, url, clicks, created_at, expires_at";

const app = createApp();
app.use(database());

app.post("/", validate("json", createSchema), async (c) => {
  const { url, code, expiresInSeconds } = c.req.valid("json");
  const sql = db(c);
  const expiresAt = expiresInSeconds === undefined ? null : new Date(Date.now() + expiresInSeconds * 1000);
  // A generated code can collide; try a few before giving up. A code the client chose cannot be retried.
  for (let attempt = 0; attempt < 5; attempt++) {
    const [link] = await sql<Link[]>`
      insert into links (code, url, expires_at) values (${code ?? newCode()}, ${url}, ${expiresAt})
      on conflict (code) do nothing
      returning ${sql.unsafe(columns)}`;
    if (link) return c.json(toJson(link), 201, { location: `${c.req.header("x-forwarded-prefix") ?? ""}/${link.code}` });
    if (code) throw new ApiError(409, `The code "${code}" is taken`, { code: "code_taken" });
  }
  throw new ApiError(503, "Could not find a free code; try again", { headers: { "retry-after": "1" } });
});

app.get("/", validate("query", listSchema), async (c) => {
  const { limit, before } = c.req.valid("query");
  const sql = db(c);
  const rows = await sql<Link[]>`
    select ${sql.unsafe(columns)} from links
    ${before ? sql`where created_at < ${before}` : sql``}
    order by created_at desc, code limit ${limit}`;
  const last = rows.at(-1);
  return c.json({ links: rows.map(toJson), next: rows.length === limit && last ? last.created_at.toISOString() : null });
});

app.get("/:code", validate("param", z.object({ code: codeSchema })), async (c) => {
  const { code } = c.req.valid("param");
  const sql = db(c);
  const [link] = await sql<(Pick<Link, "url"> & { expired: boolean })[]>`
    select url, coalesce(expires_at <= now(), false) as expired from links where code = ${code}`;
  if (!link) throw new ApiError(404, `No link "${code}"`);
  if (link.expired) throw new ApiError(410, `The link "${code}" has expired`, { code: "expired" });
  // Count the click after the response is sent: the redirect does not wait for the write.
  c.executionCtx.waitUntil(sql`update links set clicks = clicks + 1 where code = ${code}`.then(() => undefined));
  return c.redirect(link.url, 302);
});

app.get("/:code/stats", validate("param", z.object({ code: codeSchema })), async (c) => {
  const { code } = c.req.valid("param");
  const sql = db(c);
  const [link] = await sql<Link[]>`select ${sql.unsafe(columns)} from links where code = ${code}`;
  if (!link) throw new ApiError(404, `No link "${code}"`);
  return c.json(toJson(link));
});

app.delete("/:code", validate("param", z.object({ code: codeSchema })), async (c) => {
  const { code } = c.req.valid("param");
  const deleted = await db(c)`delete from links where code = ${code}`;
  if (deleted.count === 0) throw new ApiError(404, `No link "${code}"`);
  return c.body(null, 204);
});

/** Deletes links whose expiry has passed. Runs every 5 minutes (wrangler.toml [triggers]). */
async function expire(_event: ScheduledController, env: unknown) {
  const deleted = await withDatabase(env as Record<string, unknown>, (sql) => sql`delete from links where expires_at <= now()`);
  console.log(`links: deleted ${deleted.count} expired link(s)`);
}

export default withCrons(app, { "*/5 * * * *": expire });
