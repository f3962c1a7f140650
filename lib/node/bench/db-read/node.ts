/**
 * The database read endpoint on Node, the bench's baseline: the same app as the function (items.ts) with ONE
 * persistent postgres.js pool for the process (max 10, no prepared statements: PgBouncer transaction
 * pooling). Served by ../node-server.ts, which hands app.fetch the env it was given; the pool is made from
 * env.DATABASE_URL on the first request and lives until the process exits.
 */
import postgres from "postgres";
import type { Sql } from "postgres";
import { itemsApp } from "./items.ts";

let pool: Sql | undefined;

function connect(env: unknown): Sql {
  const url = (env as Record<string, unknown> | undefined)?.DATABASE_URL;
  if (typeof url !== "string" || url === "") throw new Error("DATABASE_URL is not in the env handed to app.fetch");
  return postgres(url, { max: 10, prepare: false, fetch_types: false, onnotice: () => {} });
}

export default itemsApp({ sql: (c) => (pool ??= connect(c.env)) });
