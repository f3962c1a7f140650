/**
 * A private PostgreSQL server for fault tests: its own data folder and port, so a test can stop and start
 * it without touching the machine's shared server. Uses the machine's PostgreSQL binaries (initdb, pg_ctl);
 * as root it runs them as the `postgres` user, since PostgreSQL refuses to run as root.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../lib/node/runtime/listen-socket.ts";

const run = promisify(execFile);

/** The folder with initdb and pg_ctl, or undefined when PostgreSQL's server binaries are not installed. */
export function postgresBinDir(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(base, v, "bin")).find((d) => existsSync(join(d, "pg_ctl")));
}

export interface PrivatePostgres {
  url: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  dispose(): Promise<void>;
}

export async function createPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql (Debian: apt-get install postgresql)");
  const dir = await mkdtemp(join(tmpdir(), "workyard-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  const as = async (cmd: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args]) : run(join(bin, cmd), args);
  if (asRoot) {
    const { uid, gid } = await userIds("postgres");
    await chown(dir, uid, gid);
  }
  await as("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const pg: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start: async () => {
      await as("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
    },
    stop: async () => {
      await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
    },
    dispose: async () => {
      await pg.stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}

async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  const { stdout } = await run("id", ["-u", name]);
  const { stdout: g } = await run("id", ["-g", name]);
  return { uid: Number(stdout.trim()), gid: Number(g.trim()) };
}
