/**
 * The database read endpoint as a workyard function: `app.use(database())` and `db(c)`. The bench's project
 * serves it twice (an index.ts that re-exports this module, DATABASE_URL declared as a secret): as
 * functions/db-read in its host object, where `db(c)` is the host's pool (wrangler.toml next to this file),
 * and as functions/db-read-per-request, where it is a client per request, closed after the response.
 */
import { cached, database, db } from "../../../sdk/db.ts";
import { itemsApp } from "./items.ts";

export default itemsApp({ use: [database()], sql: db, cachedSql: (c) => cached(c, 60) });
