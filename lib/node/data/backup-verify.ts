/**
 * `npm run backup:verify`: proves the newest backup restores. Checks its size and SHA-256 against its sidecar,
 * restores it with pg_restore into a scratch database on the same server (created here, always dropped after),
 * counts every table's rows there, and compares them with the source's counts at the time of the backup
 * (from the sidecar; for a dump without one, with the source as it is now). The source's current counts are
 * shown beside them, for information: writes since the backup are not a failure.
 */
import { randomBytes } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { UserError } from "../common/user-error.ts";
import { connectFailure } from "./connect-failure.ts";
import { backupInfoSchema, backupsOf, sha256File, stampOf } from "./backup.ts";
import type { BackupInfo } from "./backup.ts";
import { parseDatabaseUrl } from "./pgbouncer.ts";
import { PgToolError, runPgTool, tableRowCounts } from "./pg-tools.ts";

export interface TableCheck {
  table: string;
  /** What the source held when the backup was made (or now, for a dump without a sidecar). */
  expected: number | undefined;
  restored: number | undefined;
  /** What the source holds now. */
  sourceNow: number | undefined;
  ok: boolean;
}

export interface VerifyReport {
  path: string;
  /** The backup's sidecar, or undefined for a dump without one. */
  info: BackupInfo | undefined;
  scratchDatabase: string;
  restoreMs: number;
  tables: TableCheck[];
  /** The tables whose restored count differs from the expected one (or that are missing on one side). */
  differing: string[];
  ok: boolean;
}

/** The newest backup of DATABASE_URL's database in `dir`. */
export async function newestBackup(databaseUrl: string, dir: string): Promise<string> {
  const { database } = parseDatabaseUrl(databaseUrl);
  const names = await readdir(dir).catch(() => [] as string[]);
  const [newest] = backupsOf(database, names);
  if (!newest) throw new UserError(`No backup of "${database}" in ${dir}: make one with npm run backup (BACKUP_DIR says where they go)`);
  return join(dir, newest.name);
}

async function readInfo(path: string): Promise<BackupInfo | undefined> {
  const text = await readFile(`${path}.json`, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = backupInfoSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new UserError(`${path}.json is not a backup description workyard wrote: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** Restores `path` (default: the newest backup in `dir`) into a scratch database and compares row counts. */
export async function verifyBackup({ databaseUrl, dir, path }: { databaseUrl: string; dir: string; path?: string }): Promise<VerifyReport> {
  const file = path ?? (await newestBackup(databaseUrl, dir));
  const info = await readInfo(file);
  if (info) {
    const bytes = (await stat(file)).size;
    if (bytes !== info.bytes)
      throw new UserError(`${file} is ${bytes} bytes but was ${info.bytes} when written: the file is damaged or truncated`);
    if ((await sha256File(file)) !== info.sha256)
      throw new UserError(`${file} does not match the SHA-256 recorded when it was written: the file is damaged`);
  }

  const scratch = `workyard_verify_${stampOf(new Date()).toLowerCase()}_${randomBytes(3).toString("hex")}`;
  const admin = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const sourceNow = await tableRowCounts(admin).catch((err: unknown) => {
      throw connectFailure(err);
    });
    try {
      await admin.unsafe(`create database "${scratch}"`);
    } catch (err) {
      throw new UserError(
        `Cannot create the scratch database ${scratch} to restore into: ${(err as Error).message}. ` +
          `The role in DATABASE_URL needs CREATEDB (ALTER ROLE ${parseDatabaseUrl(databaseUrl).user} CREATEDB).`,
        { cause: err },
      );
    }
    let restored: Record<string, number>;
    let restoreMs: number;
    try {
      const t = performance.now();
      try {
        await runPgTool(
          "pg_restore",
          ["--no-owner", "--no-privileges", "--exit-on-error", `--dbname=${scratch}`, file],
          databaseUrl,
          scratch,
        );
      } catch (err) {
        if (err instanceof PgToolError) throw new UserError(`${file} did not restore: ${err.message}`, { cause: err });
        throw err;
      }
      restoreMs = performance.now() - t;
      const url = new URL(databaseUrl);
      url.pathname = `/${scratch}`;
      const restoredSql = postgres(url.toString(), { max: 1, onnotice: () => {} });
      try {
        restored = await tableRowCounts(restoredSql);
      } finally {
        await restoredSql.end({ timeout: 5 });
      }
    } finally {
      await admin.unsafe(`drop database if exists "${scratch}" with (force)`);
    }

    const expected = info?.tables ?? sourceNow;
    const names = [...new Set([...Object.keys(expected), ...Object.keys(restored)])].sort();
    const tables = names.map((table) => {
      const e = expected[table];
      const r = restored[table];
      return { table, expected: e, restored: r, sourceNow: sourceNow[table], ok: e !== undefined && e === r };
    });
    const differing = tables.filter((t) => !t.ok).map((t) => t.table);
    return { path: file, info, scratchDatabase: scratch, restoreMs, tables, differing, ok: differing.length === 0 };
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** The report as a table and a verdict that names each differing table. */
export function formatVerifyReport(r: VerifyReport): string[] {
  const n = (v: number | undefined) => (v === undefined ? "missing" : v.toLocaleString("en-US"));
  const width = Math.max(5, ...r.tables.map((t) => t.table.length));
  const against = r.info ? "at backup" : "source now";
  const lines = [
    `backup   ${r.path}` +
      (r.info
        ? ` (${r.info.bytes.toLocaleString("en-US")} bytes, made ${r.info.createdAt}, SHA-256 ok)`
        : " (no sidecar: comparing with the source as it is now)"),
    `restored into the scratch database ${r.scratchDatabase} in ${Math.round(r.restoreMs)} ms (dropped after)`,
    "",
    `${"table".padEnd(width)}  ${against.padStart(10)}  ${"restored".padStart(10)}  ${"source now".padStart(10)}`,
    ...r.tables.map(
      (t) =>
        `${t.table.padEnd(width)}  ${n(t.expected).padStart(10)}  ${n(t.restored).padStart(10)}  ${n(t.sourceNow).padStart(10)}${t.ok ? "" : "  <- differs"}`,
    ),
    "",
  ];
  const rows = r.tables.reduce((sum, t) => sum + (t.restored ?? 0), 0);
  if (r.ok)
    lines.push(
      `OK: ${r.tables.length} tables, ${rows.toLocaleString("en-US")} rows; every restored count matches the source ${r.info ? "at the time of the backup" : "now"}`,
    );
  else {
    const detail = r.tables.filter((t) => !t.ok).map((t) => `${t.table} (${against} ${n(t.expected)}, restored ${n(t.restored)})`);
    lines.push(`FAILED: ${r.differing.length} of ${r.tables.length} tables differ: ${detail.join(", ")}`);
  }
  return lines;
}
