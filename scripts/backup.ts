/**
 * npm run backup: a compressed, timestamped pg_dump of DATABASE_URL into BACKUP_DIR (default .workyard/backups;
 * /var/backups/workyard in production), then retention (BACKUP_KEEP newest, none older than BACKUP_MAX_AGE_DAYS).
 */
import { backupSettingsFromEnv, runBackup } from "../lib/node/data/backup.ts";
import { redactUrl } from "../lib/node/common/redact.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

cliArgs(
  { options: {} },
  "usage: npm run backup\n  A compressed pg_dump of DATABASE_URL into BACKUP_DIR, then retention (BACKUP_KEEP, BACKUP_MAX_AGE_DAYS).",
);

const paths = projectWithEnv();
const parsed = backupSettingsFromEnv(process.env, paths.work);
if (!parsed.ok) {
  console.error(`Cannot back up: ${parsed.error}`);
  process.exit(2);
}
const settings = parsed.settings;
await runCommand(async () => {
  const r = await runBackup(settings);
  const rows = Object.values(r.info.tables).reduce((a, b) => a + b, 0);
  console.log(`backed up ${redactUrl(settings.DATABASE_URL)} to ${r.path}`);
  console.log(
    `  ${r.info.bytes.toLocaleString("en-US")} bytes, ${Object.keys(r.info.tables).length} tables, ${rows.toLocaleString("en-US")} rows, ${Math.round(r.ms)} ms (${r.info.pgDump})`,
  );
  console.log(
    r.pruned.length
      ? `  pruned ${r.pruned.length} old backup(s): ${r.pruned.join(", ")}`
      : `  nothing to prune (keep ${settings.BACKUP_KEEP}, max age ${settings.BACKUP_MAX_AGE_DAYS} days)`,
  );
}, "Backup failed: ");
