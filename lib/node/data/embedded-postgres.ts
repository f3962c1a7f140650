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
import { connectFailure, isConnectFailure } from "./connect-failure.ts";
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

/** Who has the data folder open, from its lock file: `<pid>\n[<url it serves the database on>\n]`. */
interface Holder {
  pid: number;
  url?: string;
}

const lockFile = (dataDir: string) => join(dataDir, "workyard.lock");

async function readHolder(dataDir: string): Promise<Holder | undefined> {
  const [pid, url] = (await readFile(lockFile(dataDir), "utf8").catch(() => "")).split("\n").map((line) => line.trim());
  const holder = Number(pid);
  return holder ? { pid: holder, url: url || undefined } : undefined;
}

/**
 * Claims the data folder for this process: PGlite must never be opened by two processes at once. `serving` then
 * records where this process serves it, so that a command run meanwhile connects there instead (servedAt).
 */
async function claim(dataDir: string): Promise<{ serving(url: string): Promise<void>; release(): Promise<void> }> {
  const lock = lockFile(dataDir);
  const holder = await readHolder(dataDir);
  if (holder && holder.pid !== process.pid && alive(holder.pid)) {
    throw new UserError(
      `The embedded database in ${dataDir} is open in process ${holder.pid} (npm start?). ` +
        "Stop that first, or set DATABASE_URL to use a PostgreSQL server.",
    );
  }
  await writeFile(lock, `${process.pid}\n`);
  return {
    serving: (url) => writeFile(lock, `${process.pid}\n${url}\n`),
    release: () => rm(lock, { force: true }),
  };
}

/**
 * Where a live process (`npm start`, `npm run dev`, another command; this one too) serves the embedded database in
 * `dataDir`, or undefined when none has it open. A process that has it open but does not serve it yet (starting up,
 * or a version from before the URL was recorded) is a UserError saying to wait.
 */
export async function servedAt(dataDir: string): Promise<{ pid: number; url: string } | undefined> {
  const holder = await readHolder(dataDir);
  if (!holder || !alive(holder.pid)) return undefined;
  if (holder.url) return { pid: holder.pid, url: holder.url };
  throw new UserError(
    `The embedded database in ${dataDir} is being opened by process ${holder.pid} (npm start?) and is not served yet. ` +
      "Try again once it has started (or restart it if it is an older version, which does not say where it serves).",
  );
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
  const { serving, release } = await claim(dataDir);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = await PGlite.create(dataDir);
    server = new PGLiteSocketServer({ db: serializeExtendedQueries(db), host: "127.0.0.1", port, maxConnections: 64 });
    await server.start();
    await serving(`postgres://postgres@${server.getServerConn()}/postgres`);
  } catch (err) {
    await server?.stop().catch(() => {});
    await db?.close();
    await release();
    throw err;
  }
  const [opened, served] = [db, server];
  return {
    url: `postgres://postgres@${served.getServerConn()}/postgres`,
    dataDir,
    async stop() {
      await served.stop();
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
 * embedded database in `dataDir`: through the server of the process that has it open (`npm start`, `npm run dev`),
 * so a change is seen by the running functions at once, or else opened for the call.
 */
export async function withProjectDatabase<T>(env: NodeJS.ProcessEnv, dataDir: string, work: (sql: Sql) => Promise<T>): Promise<T> {
  const served = env.DATABASE_URL ? undefined : await servedAt(dataDir);
  const embedded = env.DATABASE_URL || served ? undefined : await startEmbeddedPostgres(dataDir);
  // On the served PGlite every connection shares one session: no named statements that another client's could meet.
  const sql = postgres(env.DATABASE_URL || served?.url || embedded?.url || "", { max: 1, prepare: !served, onnotice: () => {} });
  try {
    return await work(sql);
  } catch (err) {
    if (served && isConnectFailure(err)) {
      throw new UserError(
        `Process ${served.pid} has the embedded database open, but it does not answer where it said it serves it ` +
          `(${served.url}: ${(err as Error).message}). If npm start has just stopped, try again; ` +
          `if process ${served.pid} is not workyard's, delete ${lockFile(dataDir)}.`,
        { cause: err },
      );
    }
    throw connectFailure(err);
  } finally {
    await sql.end();
    await embedded?.stop();
  }
}
