/**
 * SQL migrations (migrations/NNNN_name.sql, with "-- Up Migration" / "-- Down Migration" sections), run by
 * node-pg-migrate: each migration in its own transaction, recorded in the `pgmigrations` table, and an
 * advisory lock so that two runners at once never apply the same migration twice (the second waits).
 * Runs directly against PostgreSQL, not through PgBouncer: session locks do not survive transaction pooling.
 */
import { readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { runner } from "node-pg-migrate";
import pg from "pg";
import postgres from "postgres";
import { UserError } from "../common/user-error.ts";
import { connectFailure } from "./connect-failure.ts";

export const MIGRATIONS_TABLE = "pgmigrations";

/** Where a set of migrations records itself: the app's in public.pgmigrations, the platform's apart. */
export interface MigrationTable {
  table: string;
  schema?: string;
}
const APP: MigrationTable = { table: MIGRATIONS_TABLE };

/** The platform's own tables (cron runs, ...), in schema `workyard`, applied by the supervisor itself. */
export const PLATFORM_MIGRATIONS = {
  dir: fileURLToPath(new URL("./platform-migrations", import.meta.url)),
  table: { table: "migrations", schema: "workyard" } satisfies MigrationTable,
};

// node-pg-migrate creates its table before it takes its own lock, so two runners on a fresh database can
// collide there. Our own session lock around the whole run serializes runners from the very start.
const RUN_LOCK = 824_701_193_011_845n;

async function withRunLock<T>(databaseUrl: string, work: () => Promise<T>): Promise<T> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(${RUN_LOCK.toString()}::bigint)`.catch((err: unknown) => {
      throw connectFailure(err);
    });
    return await work();
  } finally {
    await sql`select pg_advisory_unlock(${RUN_LOCK.toString()}::bigint)`.catch(() => {});
    await sql.end({ timeout: 5 });
  }
}

// Runs in this process, queued per database. The embedded PGlite has a single backend session behind all
// its connections, so the advisory lock cannot exclude anything there; this queue does (and the embedded
// data folder is only ever opened by one process).
const queues = new Map<string, Promise<unknown>>();

interface RunOptions {
  dryRun?: boolean;
  direction?: "up" | "down";
  count?: number;
  table?: MigrationTable;
}

function run(databaseUrl: string, dir: string, options: RunOptions) {
  const previous = queues.get(databaseUrl) ?? Promise.resolve();
  const next = previous.catch(() => {}).then(() => withRunLock(databaseUrl, () => runLocked(databaseUrl, dir, options)));
  queues.set(databaseUrl, next);
  void next
    .finally(() => {
      if (queues.get(databaseUrl) === next) queues.delete(databaseUrl);
    })
    .catch(() => {});
  return next;
}

async function runLocked(databaseUrl: string, dir: string, options: RunOptions) {
  const table = options.table ?? APP;
  // The runner announces each migration before running it; remember the last so a failure can name it.
  let current: string | undefined;
  const quiet = {
    debug: () => {},
    info: (message: string) => {
      current = /^### MIGRATION (.+) \((?:UP|DOWN)\) ###$/.exec(message)?.[1] ?? current;
    },
    warn: () => {},
    error: () => {},
  };
  // The runner's own client is ended without waiting (node-pg-migrate 9): a database dropped right after a run (a
  // test's) then ended a connection nobody listened to, an uncaught error. This one is ended before the run returns.
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {}); // the server ended it (the run's outcome is in the query that failed, if any)
  try {
    await client.connect().catch((err: unknown) => {
      throw connectFailure(err);
    });
    const ran = await runner({
      dbClient: client,
      dir,
      migrationsTable: table.table,
      ...(table.schema ? { migrationsSchema: table.schema, createMigrationsSchema: true } : {}),
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
    if (err instanceof UserError) throw err;
    const where = current ? ` in ${current}.sql (rolled back; earlier migrations stay applied)` : "";
    throw new UserError(`Migration failed${where}: ${(err as Error).message}`, { cause: err });
  } finally {
    await client.end().catch(() => {});
  }
}

/** Names of the migrations in `dir` not yet applied to the database. */
export function pendingMigrations(databaseUrl: string, dir: string): Promise<string[]> {
  return run(databaseUrl, dir, { dryRun: true });
}

/** Applies every pending migration, in order; returns the names applied. */
export function migrateUp(databaseUrl: string, dir: string, table: MigrationTable = APP): Promise<string[]> {
  return run(databaseUrl, dir, { table });
}

/** Reverts the last `count` migrations; returns the names reverted. */
export function migrateDown(databaseUrl: string, dir: string, count = 1): Promise<string[]> {
  return run(databaseUrl, dir, { direction: "down", count });
}

export interface MigrationState {
  name: string;
  /** When it was applied; undefined while pending. */
  appliedAt?: Date;
}

/** Every migration file in `dir` with when it was applied, in order. */
export async function migrationStatus(databaseUrl: string, dir: string): Promise<MigrationState[]> {
  const files = (await readdir(dir))
    .filter((f) => f.endsWith(".sql"))
    .map((f) => f.replace(/\.sql$/, ""))
    .sort();
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [table] = await sql<{ exists: boolean }[]>`select to_regclass(${MIGRATIONS_TABLE}) is not null as exists`.catch(
      (err: unknown) => {
        throw connectFailure(err);
      },
    );
    const rows = table?.exists ? await sql<{ name: string; run_on: Date }[]>`select name, run_on from ${sql(MIGRATIONS_TABLE)}` : [];
    const applied = new Map(rows.map((r) => [r.name, r.run_on]));
    const names = [...new Set([...files, ...applied.keys()])].sort();
    return names.map((name) => ({ name, appliedAt: applied.get(name) }));
  } finally {
    await sql.end();
  }
}
