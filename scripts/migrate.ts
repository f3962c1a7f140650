/**
 * npm run migrate -- [status|up|down [N]]: SQL migrations against DATABASE_URL, directly (not through
 * PgBouncer: the runner's advisory lock is a session feature that transaction pooling does not keep).
 * Without DATABASE_URL it works on the embedded database, as long as `npm start` is not running on it.
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { startEmbeddedPostgres } from "../lib/node/data/embedded-postgres.ts";
import { migrateDown, migrateUp, migrationStatus } from "../lib/node/data/migrations.ts";
import { redactUrl } from "../lib/node/common/redact.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const usage = "usage: npm run migrate -- [status|up|down [N]]";
const paths = projectWithEnv();

const { positionals } = cliArgs({ allowPositionals: true, strict: true }, usage);
const [command = "status", count] = positionals;
if (!["status", "up", "down"].includes(command) || (count !== undefined && !/^\d+$/.test(count))) {
  console.error(usage);
  process.exit(2);
}

await runCommand(async () => {
  const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres(paths.embeddedDb);
  const url = process.env.DATABASE_URL ?? embedded?.url ?? "";
  console.log(`database: ${embedded ? `embedded PGlite (${embedded.dataDir})` : redactUrl(url)}`);
  try {
    if (command === "status") {
      const status = await migrationStatus(url, paths.migrations);
      for (const m of status)
        console.log(`  ${m.appliedAt ? `applied ${m.appliedAt.toISOString()}` : "pending                         "}  ${m.name}`);
      const pending = status.filter((m) => !m.appliedAt).length;
      console.log(pending === 0 ? "up to date" : `${pending} pending: run npm run migrate -- up`);
    } else if (command === "up") {
      const applied = await migrateUp(url, paths.migrations);
      console.log(applied.length === 0 ? "nothing to apply: up to date" : `applied: ${applied.join(", ")}`);
    } else {
      const reverted = await migrateDown(url, paths.migrations, Number(count ?? 1));
      console.log(reverted.length === 0 ? "nothing to revert" : `reverted: ${reverted.join(", ")}`);
    }
  } finally {
    await embedded?.stop();
  }
});
