/**
 * links: a small link shortener on PostgreSQL.
 *   POST   /            {url, code?}  create (201); a taken code is 409
 *   GET    /            ?limit&before list, newest first
 *   GET    /:code                     redirect (302); the click is counted after the response
 *   GET    /:code/stats               the link and its click count
 *   DELETE /:code                     delete (204)
 */
import { z } from "zod";
import { createApp } from "../../lib/worker/app.ts";
import { database, db } from "../../lib/worker/db.ts";
import { ApiError } from "../../lib/worker/errors.ts";
import { validate } from "../../lib/worker/validate.ts";

interface Link {
  code: string;
  url: string;
  clicks: string; // bigint arrives as a string; see toJson
  created_at: Date;
}

const codeSchema = z.string().regex(/^[A-Za-z0-9_-]{3,64}$/, "3 to 64 letters, digits, '-' or '_'");
const createSchema = z.object({
  url: z.url({ protocol: /^https?$/, error: "an absolute http(s) URL" }).max(2048),
  code: codeSchema.optional(),
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
  return { code: link.code, url: link.url, clicks: Number(link.clicks), createdAt: link.created_at.toISOString() };
}

const app = createApp();
app.use(database());

app.post("/", validate("json", createSchema), async (c) => {
  const { url, code } = c.req.valid("json");
  const sql = db(c);
  // A generated code can collide; try a few before giving up. A code the client chose cannot be retried.
  for (let attempt = 0; attempt < 5; attempt++) {
    const [link] = await sql<Link[]>`
      insert into links (code, url) values (${code ?? newCode()}, ${url})
      on conflict (code) do nothing
      returning code, url, clicks, created_at`;
    if (link) return c.json(toJson(link), 201, { location: `${c.req.header("x-forwarded-prefix") ?? ""}/${link.code}` });
    if (code) throw new ApiError(409, `The code "${code}" is taken`, { code: "code_taken" });
  }
  throw new ApiError(503, "Could not find a free code; try again", { headers: { "retry-after": "1" } });
});

app.get("/", validate("query", listSchema), async (c) => {
  const { limit, before } = c.req.valid("query");
  const sql = db(c);
  const rows = await sql<Link[]>`
    select code, url, clicks, created_at from links
    ${before ? sql`where created_at < ${before}` : sql``}
    order by created_at desc, code limit ${limit}`;
  const last = rows.at(-1);
  return c.json({ links: rows.map(toJson), next: rows.length === limit && last ? last.created_at.toISOString() : null });
});

app.get("/:code", validate("param", z.object({ code: codeSchema })), async (c) => {
  const { code } = c.req.valid("param");
  const sql = db(c);
  const [link] = await sql<Pick<Link, "url">[]>`select url from links where code = ${code}`;
  if (!link) throw new ApiError(404, `No link "${code}"`);
  // Count the click after the response is sent: the redirect does not wait for the write.
  c.executionCtx.waitUntil(sql`update links set clicks = clicks + 1 where code = ${code}`.then(() => undefined));
  return c.redirect(link.url, 302);
});

app.get("/:code/stats", validate("param", z.object({ code: codeSchema })), async (c) => {
  const { code } = c.req.valid("param");
  const [link] = await db(c)<Link[]>`select code, url, clicks, created_at from links where code = ${code}`;
  if (!link) throw new ApiError(404, `No link "${code}"`);
  return c.json(toJson(link));
});

app.delete("/:code", validate("param", z.object({ code: codeSchema })), async (c) => {
  const { code } = c.req.valid("param");
  const deleted = await db(c)`delete from links where code = ${code}`;
  if (deleted.count === 0) throw new ApiError(404, `No link "${code}"`);
  return c.body(null, 204);
});

export default app;
