/**
 * PgBouncer's own figures from its admin console (SHOW POOLS, SHOW STATS), read as the stats user. The
 * admin console speaks only the simple query protocol, which node-postgres uses for queries without
 * parameters.
 */
import pg from "pg";

export interface PoolFigures {
  pools: {
    database: string;
    clActive: number;
    clWaiting: number;
    svActive: number;
    svIdle: number;
    maxWaitSeconds: number;
    transactions: number;
    queries: number;
  }[];
}

const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));

/** One reading of SHOW POOLS and SHOW STATS (the admin console's own "pgbouncer" database left out). */
export async function readPoolFigures(statsUrl: string): Promise<PoolFigures> {
  const client = new pg.Client({ connectionString: statsUrl, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    const pools = (await client.query("SHOW POOLS")).rows as Record<string, unknown>[];
    const stats = (await client.query("SHOW STATS")).rows as Record<string, unknown>[];
    const byDb = new Map(stats.map((s) => [String(s.database), s]));
    return {
      pools: pools
        .filter((p) => p.database !== "pgbouncer")
        .map((p) => {
          const s = byDb.get(String(p.database)) ?? {};
          return {
            database: String(p.database),
            clActive: num(p.cl_active),
            clWaiting: num(p.cl_waiting),
            svActive: num(p.sv_active),
            svIdle: num(p.sv_idle),
            maxWaitSeconds: num(p.maxwait) + num(p.maxwait_us) / 1e6,
            transactions: num(s.total_xact_count),
            queries: num(s.total_query_count),
          };
        }),
    };
  } finally {
    await client.end().catch(() => {});
  }
}
