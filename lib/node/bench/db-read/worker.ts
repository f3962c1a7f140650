/**
 * The database read endpoint as a workyard function: `app.use(database())` and `db(c)`, a postgres.js client
 * per request, closed after the response. The bench's project serves it as functions/db-read (an index.ts
 * that re-exports this module), with DATABASE_URL declared as a secret (wrangler.toml next to this file).
 */
import { database, db } from "../../../worker/db.ts";
import { itemsApp } from "./items.ts";

export default itemsApp({ use: [database()], sql: db });
