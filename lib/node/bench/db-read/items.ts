/**
 * The database read endpoint the bench loads, written once and served two ways: `GET /:id` answers one row
 * of `bench_items` as JSON (404 when there is none). Only where `sql` comes from differs between the two:
 * inside workerd (worker.ts) `db(c)` from lib/sdk/db.ts (the host's pool, or a client per request), on Node (node.ts) one pool for the
 * process. Everything else (the app factory's middleware, validation, the query, the response) is this code.
 */
import type { Context, MiddlewareHandler } from "hono";
import { z } from "zod";
import { createApp } from "../../../sdk/app.ts";
import { ApiError } from "../../../sdk/errors.ts";
import { validate } from "../../../sdk/validate.ts";

/** The table the bench seeds in its scratch database and the endpoint reads. */
export const ITEMS_TABLE = "bench_items";

export interface Item {
  id: number;
  name: string;
}

/** A tagged template that reads items: postgres.js's `sql`, or `cached(c, maxAge)`. */
export type ReadItems = (strings: TemplateStringsArray, id: number) => PromiseLike<readonly Item[]>;

export interface ItemsAppOptions {
  /** Middleware before the route (inside workerd: `database()`). */
  use?: MiddlewareHandler[];
  /** The postgres.js client for this request. */
  sql: (c: Context) => ReadItems;
  /** Inside workerd: `GET /cached/:id` reads through the host's read cache with this (`cached(c, 60)`). */
  cachedSql?: (c: Context) => ReadItems;
}

const params = validate(
  "param",
  z.object({
    id: z.coerce
      .number()
      .int()
      .min(1)
      .max(2 ** 31 - 1),
  }),
);

/** The app: the project's app factory plus `GET /:id` (and `GET /cached/:id` when `cachedSql` is given) and `POST /:id`. */
export function itemsApp({ use = [], sql, cachedSql }: ItemsAppOptions) {
  const app = createApp();
  for (const middleware of use) app.use(middleware);
  for (const [path, read] of [["/:id", sql], ...(cachedSql ? [["/cached/:id", cachedSql] as const] : [])] as const) {
    app.get(path, params, async (c) => {
      const { id } = c.req.valid("param");
      const [item] = await read(c)`select id, name from bench_items where id = ${id}`;
      if (!item) throw new ApiError(404, `No item ${id}`);
      return c.json(item);
    });
  }
  // A write, for what the read cache's invalidation costs a write (the bench's db write rows): the same row, unchanged.
  app.post("/:id", params, async (c) => {
    const { id } = c.req.valid("param");
    const [item] = await sql(c)`update bench_items set name = name where id = ${id} returning id, name`;
    if (!item) throw new ApiError(404, `No item ${id}`);
    return c.json(item);
  });
  return app;
}
