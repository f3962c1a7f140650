/**
 * SQL migrations (migrations/NNNN_name.sql, with "-- Up Migration" / "-- Down Migration" sections), run by
 * node-pg-migrate: each migration in its own transaction, recorded in the `pgmigrations` table, and an
 * advisory lock so that two runners at once never apply the same migration twice (the second waits).
 */
import { runner } from "node-pg-migrate";

export const MIGRATIONS_TABLE = "pgmigrations";

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MigrationError";
  }
}

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

async function run(databaseUrl: string, dir: string, options: { dryRun?: boolean; direction?: "up" | "down"; count?: number }) {
  try {
    const ran = await runner({
      databaseUrl,
      dir,
      migrationsTable: MIGRATIONS_TABLE,
      direction: options.direction ?? "up",
      count: options.count ?? Infinity,
      dryRun: options.dryRun ?? false,
      singleTransaction: false,
      checkOrder: true,
      advisoryLockMode: "wait",
      ignorePattern: "(\\..*|.*\\.md)",
      logger: quiet,
    });
    return ran.map((m) => m.name);
  } catch (err) {
    throw new MigrationError(`Migration failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Names of the migrations in `dir` not yet applied to the database. */
export function pendingMigrations(databaseUrl: string, dir: string): Promise<string[]> {
  return run(databaseUrl, dir, { dryRun: true });
}

/** Applies every pending migration, in order; returns the names applied. */
export function migrateUp(databaseUrl: string, dir: string): Promise<string[]> {
  return run(databaseUrl, dir, {});
}

/** Reverts the last `count` migrations; returns the names reverted. */
export function migrateDown(databaseUrl: string, dir: string, count = 1): Promise<string[]> {
  return run(databaseUrl, dir, { direction: "down", count });
}
