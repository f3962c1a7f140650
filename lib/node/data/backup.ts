/**
 * `npm run backup`: pg_dump of DATABASE_URL in PostgreSQL's custom format (compressed; restorable table by
 * table with pg_restore), into BACKUP_DIR as <database>-<UTC time>.dump, with a sidecar <file>.json that
 * holds its size, SHA-256 and the exact row count of every table in the dumped snapshot (counted in the
 * same snapshot pg_dump reads, via pg_export_snapshot, so `backup:verify` compares like with like).
 * Old backups of the same database are pruned by count and by age; the newest is always kept.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { z } from "zod";
import { asUserError } from "../common/user-error.ts";
import { connectFailure } from "./connect-failure.ts";
import { parseDatabaseUrl } from "./pgbouncer.ts";
import { runPgTool, tableRowCounts } from "./pg-tools.ts";

/** How many backups retention keeps, and the age (in days) past which it removes them, unless told otherwise. */
export const DEFAULT_BACKUP_KEEP = 14;
export const DEFAULT_BACKUP_MAX_AGE_DAYS = 30;

export const backupSettingsSchema = z.object({
  DATABASE_URL: z.string({ error: "DATABASE_URL is not set: backups are of a real PostgreSQL (the embedded PGlite has none)" }).min(1),
  BACKUP_DIR: z.string().min(1).optional(),
  BACKUP_KEEP: z.coerce.number().int().min(1, { error: "BACKUP_KEEP must be at least 1" }).default(DEFAULT_BACKUP_KEEP),
  BACKUP_MAX_AGE_DAYS: z.coerce.number().min(0).default(DEFAULT_BACKUP_MAX_AGE_DAYS),
});
export type BackupSettings = z.infer<typeof backupSettingsSchema>;

/**
 * The backup settings in `env`, BACKUP_DIR defaulting to <work>/backups (`work`: the project's .workyard);
 * or every problem with them, in one message.
 */
export function backupSettingsFromEnv(
  env: NodeJS.ProcessEnv,
  work: string,
): { ok: true; settings: BackupSettings & { BACKUP_DIR: string } } | { ok: false; error: string } {
  const parsed = backupSettingsSchema.safeParse(env);
  if (!parsed.success) return { ok: false, error: parsed.error.issues.map((i) => i.message).join("; ") };
  return { ok: true, settings: { ...parsed.data, BACKUP_DIR: parsed.data.BACKUP_DIR ?? join(work, "backups") } };
}

/** What a backup's sidecar file says about it. */
export const backupInfoSchema = z.object({
  format: z.literal(1),
  database: z.string(),
  file: z.string(),
  createdAt: z.iso.datetime(),
  bytes: z.number(),
  sha256: z.string(),
  pgDump: z.string(),
  tables: z.record(z.string(), z.number()),
});
export type BackupInfo = z.infer<typeof backupInfoSchema>;

/** 2025-01-02T03:04:05.678Z → 20250102T030405678Z: sorts as time does, safe in a file name. */
export const stampOf = (d: Date) => d.toISOString().replace(/[-:.]/g, "");
const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/;

export interface BackupFile {
  name: string;
  at: Date;
}

/** The backups of `database` among file names (others' files are never touched), newest first. */
export function backupsOf(database: string, names: string[]): BackupFile[] {
  const prefix = `${database}-`;
  return names
    .filter((n) => n.startsWith(prefix) && n.endsWith(".dump"))
    .flatMap((name) => {
      const m = STAMP.exec(name.slice(prefix.length, -".dump".length));
      if (!m) return [];
      const [, y, mo, d, h, mi, s, ms] = m.map(Number) as number[];
      return [{ name, at: new Date(Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, s, ms)) }];
    })
    .sort((a, b) => b.at.getTime() - a.at.getTime());
}

/** Which backups retention removes: past the newest `keep`, or older than `maxAgeDays` (0: no age limit); never the newest. */
export function backupsToPrune(
  backups: BackupFile[],
  { keep, maxAgeDays, now }: { keep: number; maxAgeDays: number; now: Date },
): BackupFile[] {
  const oldest = now.getTime() - maxAgeDays * 86_400_000;
  return backups.filter((b, i) => i > 0 && (i >= keep || (maxAgeDays > 0 && b.at.getTime() < oldest)));
}

/** SHA-256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export interface BackupResult {
  path: string;
  info: BackupInfo;
  ms: number;
  pruned: string[];
}

/** Dumps the database, records its row counts, and applies retention. */
export async function runBackup(settings: BackupSettings & { BACKUP_DIR: string }, now = new Date()): Promise<BackupResult> {
  const started = performance.now();
  const url = settings.DATABASE_URL;
  const { database } = parseDatabaseUrl(url);
  const dir = settings.BACKUP_DIR;
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw asUserError(err); // BACKUP_DIR cannot be made by this user
  });
  const name = `${database}-${stampOf(now)}.dump`;
  const path = join(dir, name);
  const partial = `${path}.partial`;

  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  let tables: Record<string, number>;
  try {
    // One snapshot for the counts and the dump: the exporting transaction stays open until pg_dump is done.
    tables = await sql.begin("isolation level repeatable read read only", async (tx) => {
      const [snap] = await tx<{ id: string }[]>`select pg_export_snapshot() as id`;
      const counts = await tableRowCounts(tx);
      await runPgTool("pg_dump", ["--format=custom", "--compress=6", `--snapshot=${snap?.id ?? ""}`, `--file=${partial}`], url);
      return counts;
    });
  } catch (err) {
    await rm(partial, { force: true });
    throw connectFailure(err);
  } finally {
    await sql.end({ timeout: 5 });
  }
  await chmod(partial, 0o600); // a backup holds every row: readable by its owner only
  const info: BackupInfo = {
    format: 1,
    database,
    file: name,
    createdAt: now.toISOString(),
    bytes: (await stat(partial)).size,
    sha256: await sha256File(partial),
    pgDump: (await runPgTool("pg_dump", ["--version"], url)).trim(),
    tables,
  };
  await writeFile(`${path}.json`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  await rename(partial, path); // only a finished dump ever carries the .dump name

  const prune = backupsToPrune(backupsOf(database, await readdir(dir)), {
    keep: settings.BACKUP_KEEP,
    maxAgeDays: settings.BACKUP_MAX_AGE_DAYS,
    now,
  });
  for (const b of prune) {
    await rm(join(dir, b.name), { force: true });
    await rm(join(dir, `${b.name}.json`), { force: true });
  }
  return { path, info, ms: performance.now() - started, pruned: prune.map((b) => b.name) };
}
