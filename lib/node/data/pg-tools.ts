/**
 * PostgreSQL's own client tools (pg_dump, pg_restore) run from Node. The connection goes to them through
 * libpq's environment variables, never the command line, so a password does not show in `ps`.
 */
import { execa } from "execa";
import { join } from "node:path";
import type { Sql, TransactionSql } from "postgres";
import { UserError } from "../common/user-error.ts";
import { parseDatabaseUrl } from "./pgbouncer.ts";

/** pg_dump or pg_restore is missing or failed (backup-verify tells a restore that failed from other errors). */
export class PgToolError extends UserError {}

/** libpq environment for a postgres:// URL, optionally for another database on the same server. */
export function libpqEnv(url: string, database?: string): Record<string, string> {
  const db = parseDatabaseUrl(url);
  const sslmode = new URL(url).searchParams.get("sslmode");
  return {
    PGHOST: db.host,
    PGPORT: String(db.port),
    PGUSER: db.user,
    PGDATABASE: database ?? db.database,
    ...(db.password ? { PGPASSWORD: db.password } : {}),
    ...(sslmode ? { PGSSLMODE: sslmode } : {}),
  };
}

/** Runs pg_dump / pg_restore (PG_BIN_DIR, else the PATH) and returns stdout; failures carry the tool's own message. */
export async function runPgTool(tool: "pg_dump" | "pg_restore", args: string[], url: string, database?: string): Promise<string> {
  const bin = process.env.PG_BIN_DIR ? join(process.env.PG_BIN_DIR, tool) : tool;
  const result = await execa(bin, args, { env: libpqEnv(url, database), reject: false, stdin: "ignore" });
  if ((result as { code?: string }).code === "ENOENT") {
    throw new PgToolError(
      `${tool} is not installed: install PostgreSQL's client tools (Debian: sudo apt-get install -y postgresql-client), or set PG_BIN_DIR`,
    );
  }
  if (result.exitCode !== 0) {
    throw new PgToolError(`${tool} failed (exit ${result.exitCode ?? result.signal}): ${(result.stderr || result.stdout).trim()}`);
  }
  return result.stdout;
}

/** "schema.table" with each part quoted as an identifier. */
const qualified = (schema: string, table: string) => [schema, table].map((p) => `"${p.replaceAll('"', '""')}"`).join(".");

/** Exact row counts of every ordinary table outside the system schemas, keyed "schema.table", sorted. */
export async function tableRowCounts(sql: Sql | TransactionSql): Promise<Record<string, number>> {
  const tables = await sql<{ schema: string; name: string }[]>`
    select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'
      and n.nspname not like 'pg\\_temp%'
    order by 1, 2`;
  const counts: Record<string, number> = {};
  for (const t of tables) {
    const [row] = await sql.unsafe<{ n: string }[]>(`select count(*) as n from ${qualified(t.schema, t.name)}`);
    counts[`${t.schema}.${t.name}`] = Number(row?.n ?? 0);
  }
  return counts;
}
