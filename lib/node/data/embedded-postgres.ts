/**
 * The embedded default database: PGlite (PostgreSQL compiled to WASM) served over the PostgreSQL wire
 * protocol on a loopback port, so functions reach it with postgres.js exactly as they reach a real server.
 * Its data lives in a folder git ignores. Slow next to a real server; for trying things, not production.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import postgres from "postgres";
import type { Sql } from "postgres";
import { UserError } from "../common/user-error.ts";
import { connectFailure } from "./connect-failure.ts";
import { migrateUp, PLATFORM_MIGRATIONS } from "./migrations.ts";

export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
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
  if (holder && holder !== process.pid && alive(holder)) {
    throw new UserError(
      `The embedded database in ${dataDir} is open in process ${holder} (npm start?). ` +
        "Stop that first, or set DATABASE_URL to use a PostgreSQL server.",
    );
  }
  await writeFile(lock, `${process.pid}\n`);
  return () => rm(lock, { force: true });
}

/** Frontend messages of the extended query protocol that leave a sequence open until its Sync. */
const EXTENDED = new Set(["P", "B", "D", "E", "H", "C"].map((c) => c.charCodeAt(0)));
/** Longest a connection may hold the database between two messages of one sequence before others go on. */
const SEQUENCE_HOLD_MS = 5000;

/**
 * PGlite is one session, and pglite-socket serves every connection from it, one message at a time, keeping a
 * connection's messages together only inside a transaction. A client's extended query (Parse, Describe, Flush; then
 * Bind, Execute, Sync: what postgres.js sends for every query with parameters) spans two messages with a round trip
 * between, and another connection's Parse in between replaces the unnamed statement: "unnamed prepared statement
 * does not exist", or a Bind against the wrong statement. So until a connection's sequence reaches its Sync, this
 * tells the queue that a transaction is open, which makes it take that connection's next message first.
 */
export function serializeExtendedQueries(db: PGlite): PGlite {
  let openSince = 0;
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "isInTransaction") {
        return () => (openSince > 0 && Date.now() - openSince < SEQUENCE_HOLD_MS) || target.isInTransaction();
      }
      if (prop === "execProtocolRawStream") {
        return async (message: Uint8Array, options: Parameters<PGlite["execProtocolRawStream"]>[1]) => {
          try {
            return await target.execProtocolRawStream(message, options);
          } finally {
            openSince = EXTENDED.has(message[0] ?? 0) ? openSince || Date.now() : 0;
          }
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Opens (or creates) the PGlite database in `dataDir` and serves it on 127.0.0.1:`port` (0 picks one). */
export async function startEmbeddedPostgres(dataDir: string, port = 0): Promise<EmbeddedPostgres> {
  await mkdir(dataDir, { recursive: true });
  const release = await claim(dataDir);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer;
  try {
    db = await PGlite.create(dataDir);
    server = new PGLiteSocketServer({ db: serializeExtendedQueries(db), host: "127.0.0.1", port, maxConnections: 64 });
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
export async function startMigratedEmbeddedPostgres(
  dataDir: string,
  migrationsDir: string,
  log: (line: string) => void,
): Promise<EmbeddedPostgres> {
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

/**
 * Runs `work` (a project command: `npm run apikey`, `npm run user`) with a connection to DATABASE_URL, or to the
 * embedded database in `dataDir`, opened for the call (it refuses while `npm start` has it open).
 */
export async function withProjectDatabase<T>(env: NodeJS.ProcessEnv, dataDir: string, work: (sql: Sql) => Promise<T>): Promise<T> {
  const embedded = env.DATABASE_URL ? undefined : await startEmbeddedPostgres(dataDir);
  const sql = postgres(env.DATABASE_URL ?? embedded?.url ?? "", { max: 1, onnotice: () => {} });
  try {
    return await work(sql);
  } catch (err) {
    throw connectFailure(err);
  } finally {
    await sql.end();
    await embedded?.stop();
  }
}
