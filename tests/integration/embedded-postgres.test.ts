/**
 * The embedded PGlite serves every connection from one session. Queries with parameters from several connections
 * at once (postgres.js: Parse/Describe, a round trip, then Bind/Execute) must not step on each other's statements.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgres } from "../../lib/node/data/embedded-postgres.ts";
import type { EmbeddedPostgres } from "../../lib/node/data/embedded-postgres.ts";

describe("embedded PGlite with several connections", () => {
  let dir: string;
  let pg: EmbeddedPostgres;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "workyard-pglite-"));
    pg = await startEmbeddedPostgres(dir);
  });
  afterAll(async () => {
    await pg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers interleaved parameterized queries from many connections, each with its own values", async () => {
    // As the functions use it: no prepared statements, so every query with a parameter is two round trips.
    const clients = Array.from({ length: 6 }, () => postgres(pg.url, { max: 4, prepare: false, fetch_types: false, onnotice: () => {} }));
    try {
      const asked = Array.from({ length: 600 }, (_, i) => i);
      const answers = await Promise.all(
        asked.map(async (i) => {
          const sql = clients[i % clients.length] as postgres.Sql;
          // Three shapes of statement, so a Bind that lands on another connection's statement fails or answers wrong.
          const [row] =
            i % 3 === 0
              ? await sql<{ n: number; s: string }[]>`select ${i}::int as n, ${`v${i}`}::text as s`
              : i % 3 === 1
                ? await sql<{ n: number; s: string }[]>`select ${i}::int as n, 'v' || ${i}::int as s`
                : await sql<{ n: number; s: string }[]>`select (${i}::int + ${0}::int) as n, concat(${"v"}::text, ${i}::int) as s`;
          return row;
        }),
      );
      expect(answers).toEqual(asked.map((i) => ({ n: i, s: `v${i}` })));
    } finally {
      await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
    }
  });
});
