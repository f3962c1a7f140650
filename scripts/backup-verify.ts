/**
 * npm run backup:verify [-- <file>]: restores the newest backup in BACKUP_DIR (or the given file) into a scratch
 * database, compares every table's row count with the source's, drops the scratch database, and exits 1 when
 * a table differs or the backup does not restore.
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { backupSettingsFromEnv } from "../lib/node/data/backup.ts";
import { formatVerifyReport, verifyBackup } from "../lib/node/data/backup-verify.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const paths = projectWithEnv();
const usage = "usage: npm run backup:verify [-- <backup file>]";
const { positionals } = cliArgs({ allowPositionals: true, strict: true }, usage);
const parsed = backupSettingsFromEnv(process.env, paths.work);
if (!parsed.ok || positionals.length > 1) {
  console.error(parsed.ok ? usage : `Cannot verify: ${parsed.error}`);
  process.exit(2);
}
await runCommand(async () => {
  const report = await verifyBackup({ databaseUrl: parsed.settings.DATABASE_URL, dir: parsed.settings.BACKUP_DIR, path: positionals[0] });
  for (const line of formatVerifyReport(report)) console.log(line);
  return report.ok ? 0 : 1;
}, "Backup verification FAILED: ");
