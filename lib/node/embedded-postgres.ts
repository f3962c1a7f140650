/**
 * The embedded default database: PGlite (PostgreSQL compiled to WASM) served over the PostgreSQL wire
 * protocol on a loopback port, so functions reach it with postgres.js exactly as they reach a real server.
 * Its data lives in a folder git ignores. Slow next to a real server; for trying things, not production.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { migrateUp, PLATFORM_MIGRATIONS } from "./migrations.ts";

export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export class EmbeddedInUseError extends Error {
  constructor(dataDir: string, pid: number) {
    super(
      `The embedded database in ${dataDir} is open in process ${pid} (npm start?). ` +
        "Stop that first, or set DATABASE_URL to use a PostgreSQL server.",
    );
    this.name = "EmbeddedInUseError";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Claims the data folder for this process: PGlite must never be opened by two processes at once. */
async function claim(dataDir: string): Promise<() => Promise<void>> {
  const lock = join(dataDir, "workyard.lock");
  const holder = Number((await readFile(lock, "utf8").catch(() => "")).trim());
  if (holder && holder !== process.pid && alive(holder)) throw new EmbeddedInUseError(dataDir, holder);
  await writeFile(lock, `${process.pid}\n`);
  return () => rm(lock, { force: true });
}

/** Opens (or creates) the PGlite database in `dataDir` and serves it on 127.0.0.1:`port` (0 picks one). */
export async function startEmbeddedPostgres(dataDir: string, port = 0): Promise<EmbeddedPostgres> {
  await mkdir(dataDir, { recursive: true });
  const release = await claim(dataDir);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer;
  try {
    db = await PGlite.create(dataDir);
    server = new PGLiteSocketServer({ db, host: "127.0.0.1", port, maxConnections: 64 });
    await server.start();
  } catch (err) {
    await db?.close();
    await release();
    throw err;
  }
  const opened = db;
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    dataDir,
    async stop() {
      await server.stop();
      await opened.close();
      await release();
    },
  };
}

/**
 * The embedded database as `npm start` and `npm run dev` use it: opened, with the platform's tables and the
 * project's migrations applied (said through `log`). Stopped again if a migration fails.
 */
export async function startMigratedEmbeddedPostgres(dataDir: string, migrationsDir: string, log: (line: string) => void): Promise<EmbeddedPostgres> {
  const embedded = await startEmbeddedPostgres(dataDir);
  try {
    await migrateUp(embedded.url, PLATFORM_MIGRATIONS.dir, PLATFORM_MIGRATIONS.table);
    const applied = await migrateUp(embedded.url, migrationsDir);
    if (applied.length > 0) log(`applied migrations to the embedded database: ${applied.join(", ")}`);
  } catch (err) {
    await embedded.stop();
    throw err;
  }
  return embedded;
}
