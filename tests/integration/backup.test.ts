/**
 * npm run backup and npm run backup:verify against the real PostgreSQL: a dump with its row counts, a restore
 * into a scratch database that is dropped after, per-table comparison that names the tables that differ,
 * a damaged file caught by its checksum, and retention that removes only this database's old backups.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import type { Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { backupsOf, backupsToPrune } from "../../lib/node/data/backup.ts";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { parseDatabaseUrl } from "../../lib/node/data/pgbouncer.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";
import { runScript } from "../helpers/run-script.ts";
import { needs } from "../helpers/needs.ts";

describe("retention", () => {
  const now = new Date("2025-06-30T03:15:00Z");
  const names = [
    "app-20250630T031500000Z.dump",
    "app-20250629T031500000Z.dump",
    "app-20250628T031500000Z.dump",
    "app-20250501T031500000Z.dump",
  ];
  it("keeps the newest N, drops what is older than the age limit, never the newest, and ignores other files", () => {
    const all = backupsOf("app", [
      ...names,
      "app-20250630T031500000Z.dump.json",
      "other-20200101T000000000Z.dump",
      "app-notes.dump",
      "app-20200101T000000000Z.dump.partial",
    ]);
    expect(all.map((b) => b.name)).toEqual(names);
    expect(backupsToPrune(all, { keep: 2, maxAgeDays: 0, now }).map((b) => b.name)).toEqual(names.slice(2));
    expect(backupsToPrune(all, { keep: 10, maxAgeDays: 30, now }).map((b) => b.name)).toEqual([names[3]]);
    expect(backupsToPrune(all.slice(3), { keep: 1, maxAgeDays: 1, now })).toEqual([]);
  });
});

const databaseUrl = inject("databaseUrl");
const canBackUp = needs({
  suite: "npm run backup and backup:verify",
  service: "a real PostgreSQL (pg_dump cannot read the embedded PGlite)",
  available: databaseUrl !== null,
  fix: "PostgreSQL on 127.0.0.1:5432 or TEST_DATABASE_URL",
});

describe.runIf(canBackUp)("npm run backup and backup:verify", () => {
  let db: FreshDatabase;
  let sql: Sql;
  let dir: string;
  const run = (script: string, env: Record<string, string> = {}, args: string[] = []) =>
    runScript(script, args, { DATABASE_URL: db.url, BACKUP_DIR: dir, ...env });
  const scratchDatabases = async () =>
    (await sql<{ datname: string }[]>`select datname from pg_database where datname like 'workyard_verify_%'`).map((r) => r.datname);

  beforeAll(async () => {
    db = await freshDatabase();
    dir = await mkdtemp(join(tmpdir(), "workyard-backups-"));
    await migrateUp(db.url, "migrations");
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    await sql`insert into links (code, url) select 'code' || g, 'https://example.com/' || g from generate_series(1, 120) g`;
    // Names that need quoting, in a second schema: counted and restored like any other.
    await sql.unsafe(
      `create schema "Odd Schema"; create table "Odd Schema"."Mixed.Case" (id int); insert into "Odd Schema"."Mixed.Case" select generate_series(1, 7)`,
    );
  });

  afterAll(async () => {
    await sql?.end();
    await db?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Every table's row count, as backup:verify names them (the project's migrations decide which exist). */
  const tableCounts = async () => {
    const tables = await sql<{ schema: string; name: string }[]>`
      select table_schema as schema, table_name as name from information_schema.tables
      where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`;
    const counts: Record<string, number> = {};
    for (const t of tables) {
      const [row] = await sql.unsafe<{ n: number }[]>(
        `select count(*)::int as n from "${t.schema.replaceAll('"', '""')}"."${t.name.replaceAll('"', '""')}"`,
      );
      counts[`${t.schema}.${t.name}`] = row?.n ?? 0;
    }
    return counts;
  };

  it("backs up, restores into a scratch database, and finds every count equal", async () => {
    const expected = await tableCounts();
    const tables = Object.keys(expected).length;
    const rows = Object.values(expected).reduce((a, b) => a + b, 0);
    expect(expected).toMatchObject({ "Odd Schema.Mixed.Case": 7, "public.links": 120 });
    const backup = await run("backup.ts");
    expect(backup.stderr).toBe("");
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(
      new RegExp(
        `backed up postgres://postgres@127\\.0\\.0\\.1:5432/workyard_fresh_\\w+ to .*\\.dump\n {2}[\\d,]+ bytes, ${tables} tables, ${rows} rows`,
      ),
    );
    const [file] = backupsOf(parseDatabaseUrl(db.url).database, await readdir(dir));
    expect(file).toBeDefined();
    const path = join(dir, file?.name ?? "");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    // pg_dump's custom format starts with PGDMP.
    expect((await readFile(path)).subarray(0, 5).toString()).toBe("PGDMP");
    const info = JSON.parse(await readFile(`${path}.json`, "utf8")) as { tables: Record<string, number> };
    expect(info.tables).toEqual(expected);

    // Writes after the backup are not a failure: the comparison is with the source at backup time.
    await sql`insert into links (code, url) values ('after-backup', 'https://example.com/late')`;
    const verify = await run("backup-verify.ts");
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^public\.links\s+120\s+120\s+121$/m);
    expect(verify.stdout).toMatch(/^Odd Schema\.Mixed\.Case\s+7\s+7\s+7$/m);
    expect(verify.stdout).toMatch(
      new RegExp(`^OK: ${tables} tables, ${rows} rows; every restored count matches the source at the time of the backup$`, "m"),
    );
    expect(await scratchDatabases()).toEqual([]);
  });

  it("says which tables differ, and exits 1", async () => {
    // A dump without its sidecar is compared with the source as it is now; the source then gains rows.
    const [file] = backupsOf(parseDatabaseUrl(db.url).database, await readdir(dir));
    const copy = join(dir, "by-hand.dump");
    await copyFile(join(dir, file?.name ?? ""), copy);
    await sql`insert into "Odd Schema"."Mixed.Case" values (8), (9)`;
    const verify = await run("backup-verify.ts", {}, [copy]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/no sidecar: comparing with the source as it is now/);
    expect(verify.stdout).toMatch(/^public\.links\s+121\s+120\s+121 {2}<- differs$/m);
    const tables = Object.keys(await tableCounts()).length;
    expect(verify.stdout).toMatch(new RegExp(`^FAILED: 2 of ${tables} tables differ: `, "m"));
    expect(verify.stdout).toMatch(
      /tables differ: Odd Schema\.Mixed\.Case \(source now 9, restored 7\), public\.links \(source now 121, restored 120\)$/m,
    );
    expect(await scratchDatabases()).toEqual([]);
  });

  it("catches a damaged backup before restoring it", async () => {
    const [file] = backupsOf(parseDatabaseUrl(db.url).database, await readdir(dir));
    const path = join(dir, file?.name ?? "");
    const bytes = await readFile(path);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    const verify = await run("backup-verify.ts");
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(
      /Backup verification FAILED: .*\.dump does not match the SHA-256 recorded when it was written: the file is damaged/,
    );
    await rm(path);
    await rm(`${path}.json`);
  });

  it("prunes this database's old backups past BACKUP_KEEP and leaves other files alone", async () => {
    const name = parseDatabaseUrl(db.url).database;
    const old = [`${name}-20200101T000000000Z.dump`, `${name}-20200102T000000000Z.dump`, `${name}-20200103T000000000Z.dump`];
    for (const f of [...old, "someone-else-20200101T000000000Z.dump"]) await writeFile(join(dir, f), "old");
    await writeFile(join(dir, `${old[0]}.json`), "{}");
    const backup = await run("backup.ts", { BACKUP_KEEP: "2", BACKUP_MAX_AGE_DAYS: "0" });
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(new RegExp(`pruned 2 old backup\\(s\\): ${old[1]}, ${old[0]}`));
    const left = await readdir(dir);
    expect(backupsOf(name, left).map((b) => b.name)).toEqual([expect.stringMatching(/^workyard_fresh_\w+-2\d{7}T\d{9}Z\.dump$/), old[2]]);
    expect(left).toContain("someone-else-20200101T000000000Z.dump");
    expect(left).toContain("by-hand.dump");
    expect(existsSync(join(dir, `${old[0]}.json`))).toBe(false);
    // The new backup verifies.
    const verify = await run("backup-verify.ts");
    expect(verify.code).toBe(0);
  });

  it("explains what is missing", async () => {
    const r = await runScript("backup.ts", [], { DATABASE_URL: "" });
    expect(r.stderr).toMatch(/DATABASE_URL is not set: backups are of a real PostgreSQL/);
  });
});
