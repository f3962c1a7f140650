/**
 * Per-request batching: every related row a list needs is read in one query per kind (DataLoader), never one per
 * item. A page of 100 links with their owners and click counts costs one query for the links, one for the users and
 * one Redis round trip for the pending clicks.
 */
import DataLoader from "dataloader";
import type { Context } from "hono";
import { db } from "#workyard/db";
import { columns, linksByCode, listLinks, pendingClicksOf } from "../links/data.ts";
import type { LinkRow } from "../links/data.ts";

export interface UserRow {
  id: string;
  email: string;
  role: string;
  created_at: Date;
}

export interface Page {
  limit: number;
  before: string | undefined;
}

export interface Loaders {
  user: DataLoader<string, UserRow | null>;
  link: DataLoader<string, LinkRow | null>;
  pendingClicks: DataLoader<string, number>;
  /** A page of all links (one query; not batched: a query has one such list). */
  page(page: Page): Promise<LinkRow[]>;
  /** Pages of links by owner subject ("user:<id>"), one query for every owner asked with the same page. */
  linksOf(page: Page): DataLoader<string, LinkRow[]>;
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The request's loaders, each made when a resolver first asks for it (most queries need one or two). */
export function makeLoaders(c: Context): Loaders {
  const sql = () => db(c);
  let user: Loaders["user"] | undefined;
  let link: Loaders["link"] | undefined;
  let pendingClicks: Loaders["pendingClicks"] | undefined;
  const byPage = new Map<string, DataLoader<string, LinkRow[]>>();
  const loaders: Loaders = {
    get user() {
      return (user ??= userLoader(sql));
    },
    get link() {
      return (link ??= new DataLoader<string, LinkRow | null>(async (codes) => {
        const found = await linksByCode(sql(), codes);
        return codes.map((code) => found.get(code) ?? null);
      }));
    },
    get pendingClicks() {
      return (pendingClicks ??= new DataLoader<string, number>((codes) => pendingClicksOf(c, codes)));
    },
    async page({ limit, before }: Page) {
      const { links } = await listLinks(sql(), { limit, before });
      for (const row of links) loaders.link.prime(row.code, row);
      return links;
    },
    linksOf(page: Page) {
      const key = `${page.limit}|${page.before ?? ""}`;
      let loader = byPage.get(key);
      if (!loader) byPage.set(key, (loader = linksOfLoader(sql, page)));
      return loader;
    },
  };
  return loaders;
}

function userLoader(sql: () => ReturnType<typeof db>) {
  return new DataLoader<string, UserRow | null>(async (ids) => {
    const valid = ids.filter((id) => uuid.test(id));
    const rows =
      valid.length === 0
        ? []
        : await sql()<UserRow[]>`
            select id, email, role, created_at from auth_users
            where id in (select jsonb_array_elements_text(${sql().json(valid)})::uuid)`;
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

/** The newest `limit` links of each owner asked with the same page, in one query. */
function linksOfLoader(sql: () => ReturnType<typeof db>, page: Page) {
  return new DataLoader<string, LinkRow[]>(async (owners) => {
    const s = sql();
    const rows = await s<(LinkRow & { rank: number })[]>`
      select * from (
        select ${s.unsafe(columns)}, row_number() over (partition by owner order by created_at desc, code) as rank
        from links
        where owner in (select jsonb_array_elements_text(${s.json([...owners])}))
        ${page.before ? s`and created_at < ${page.before}` : s``}
      ) ranked where rank <= ${page.limit} order by created_at desc, code`;
    return owners.map((owner) => rows.filter((r) => r.owner === owner));
  });
}
