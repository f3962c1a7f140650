/**
 * npm run backup:verify [-- <file>]: restores the newest backup in BACKUP_DIR (or the given file) into a scratch
 * database, compares every table's row count with the source's, drops the scratch database, and exits 1 when
 * a table differs or the backup does not restore.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { backupSettingsSchema } from "../lib/node/backup.ts";
import { formatVerifyReport, verifyBackup } from "../lib/node/backup-verify.ts";
import { projectWithEnv } from "../lib/node/serve-cli.ts";

const paths = projectWithEnv();
const { positionals } = parseArgs({ allowPositionals: true, strict: true });
const parsed = backupSettingsSchema.safeParse(process.env);
if (!parsed.success || positionals.length > 1) {
  console.error(parsed.success ? "usage: npm run backup:verify [-- <backup file>]" : `Cannot verify: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  process.exit(2);
}
try {
  const report = await verifyBackup({ databaseUrl: parsed.data.DATABASE_URL, dir: parsed.data.BACKUP_DIR ?? join(paths.work, "backups"), path: positionals[0] });
  for (const line of formatVerifyReport(report)) console.log(line);
  process.exit(report.ok ? 0 : 1);
} catch (err) {
  console.error(`Backup verification FAILED: ${(err as Error).message}`);
  process.exit(1);
}
