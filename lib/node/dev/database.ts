/**
 * The database `npm run dev` hands to functions: DATABASE_URL as given (no PgBouncer: one developer's
 * requests do not need a pooler), or the embedded PGlite in .workyard/pglite, migrated, as `npm start` uses.
 */
import { startMigratedEmbeddedPostgres } from "../data/embedded-postgres.ts";
import { pendingMigrations } from "../data/migrations.ts";
import { redactUrl } from "../common/redact.ts";

export type DevDatabaseBackend =
  { kind: "postgres"; url: string; pending: string[] } | { kind: "embedded-pglite"; url: string; dataDir: string };

export type DevDatabase = DevDatabaseBackend & { stop(): Promise<void> };

export interface DevDatabaseOptions {
  /** DATABASE_URL, when set. */
  given: string | undefined;
  embeddedDir: string;
  migrations: string;
  log: (line: string) => void;
}

/** Uses the given database (warning about pending migrations), or starts and migrates the embedded one. */
export async function startDevDatabase({ given, embeddedDir, migrations, log }: DevDatabaseOptions): Promise<DevDatabase> {
  if (given) {
    let pending: string[] = [];
    try {
      pending = await pendingMigrations(given, migrations);
    } catch (err) {
      log(`warning: cannot check migrations on ${redactUrl(given)}: ${(err as Error).message}`);
    }
    if (pending.length > 0) {
      log(
        `warning: ${redactUrl(given)} has ${pending.length} pending migration(s): ${pending.join(", ")}; apply them with \`npm run migrate -- up\``,
      );
    }
    return { kind: "postgres", url: given, pending, stop: async () => {} };
  }
  const embedded = await startMigratedEmbeddedPostgres(embeddedDir, migrations, log);
  return { kind: "embedded-pglite", url: embedded.url, dataDir: embedded.dataDir, stop: () => embedded.stop() };
}
