/** The migration runner on a real database: order, status, rollback of a failing file, and two runners at once. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migrateDown, migrateUp, migrationStatus, pendingMigrations } from "../../lib/node/data/migrations.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";
import { runScript } from "../helpers/run-script.ts";

let db: FreshDatabase;
let dir: string;
beforeEach(async () => {
  db = await freshDatabase();
  dir = await mkdtemp(join(tmpdir(), "workyard-migrations-"));
});
afterEach(async () => {
  await db.dispose();
  await rm(dir, { recursive: true, force: true });
});

const migration = (name: string, up: string, down = "") =>
  writeFile(join(dir, `${name}.sql`), `-- Up Migration\n${up}\n\n-- Down Migration\n${down}\n`);

async function tables(): Promise<string[]> {
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<
      { name: string }[]
    >`select table_name as name from information_schema.tables where table_schema = 'public' order by 1`;
    return rows.map((r) => r.name);
  } finally {
    await sql.end();
  }
}

describe(`migrations`, () => {
  it("applies pending ones in order, is safe to run twice, and reports status", async () => {
    await migration("0001_a", "create table a (id int primary key);", "drop table a;");
    await migration("0002_b", "create table b (id int references a);", "drop table b;");
    expect(await pendingMigrations(db.url, dir)).toEqual(["0001_a", "0002_b"]);
    expect(await migrateUp(db.url, dir)).toEqual(["0001_a", "0002_b"]);
    expect(await migrateUp(db.url, dir)).toEqual([]);
    const status = await migrationStatus(db.url, dir);
    expect(status.map((s) => [s.name, s.appliedAt instanceof Date])).toEqual([
      ["0001_a", true],
      ["0002_b", true],
    ]);
    expect(await migrateDown(db.url, dir)).toEqual(["0002_b"]);
    expect(await tables()).toEqual(["a", "pgmigrations"]);
  });

  it("rolls a failing migration back whole and names the file and the error", async () => {
    await migration("0001_a", "create table a (id int primary key);");
    await migration("0002_bad", "create table b (id int);\ninsert into b values (1);\nselect 1 / 0;");
    const err = await migrateUp(db.url, dir).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/0002_bad/);
    expect((err as Error).message).toMatch(/division by zero/);
    expect(await tables()).toEqual(["a", "pgmigrations"]); // 0001 kept, nothing of 0002
    expect(await pendingMigrations(db.url, dir)).toEqual(["0002_bad"]);
  });

  it("applies each migration once when two runners start at the same time", async () => {
    await migration("0001_slow", "create table slow (id int); select pg_sleep(0.5);");
    await migration("0002_after", "create table after_slow (id int);");
    const [a, b] = await Promise.all([migrateUp(db.url, dir), migrateUp(db.url, dir)]);
    expect([...a, ...b].sort()).toEqual(["0001_slow", "0002_after"]);
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const rows = await sql`select name from pgmigrations order by name`;
    await sql.end();
    expect(rows.map((r) => r.name)).toEqual(["0001_slow", "0002_after"]);
  });
});

describe("npm run migrate", () => {
  const cli = (args: string[], env: Record<string, string>) =>
    runScript("migrate.ts", args, env).then((r) => ({ code: r.code, out: r.stdout + r.stderr }));

  it("prints status, applies, and exits non-zero on a bad command", async () => {
    if (db.kind !== "postgres") return; // the CLI without DATABASE_URL uses the project's own embedded database
    const status = await cli(["status"], { DATABASE_URL: db.url });
    expect(status.out).toMatch(/pending\s+0001_links/);
    expect((await cli(["up"], { DATABASE_URL: db.url })).out).toMatch(/applied: 0001_links/);
    expect((await cli(["status"], { DATABASE_URL: db.url })).out).toMatch(/up to date/);
    expect((await cli(["sideways"], { DATABASE_URL: db.url })).code).toBe(2);
  });
});
