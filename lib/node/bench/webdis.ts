/**
 * webdis (the Debian package `webdis`: an HTTP interface to Redis in C, on libevent and hiredis), the
 * yardstick of the Redis proxy's row. Started on a free loopback port with a JSON config of its own in a
 * private temp folder, pointed at the Redis the bench uses, with the package's own defaults otherwise
 * (2 threads, verbosity 3); stop() ends it and removes the folder, also when the bench exits without
 * stopping it.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { freePort } from "../runtime/listen-socket.ts";
import { findOnPath } from "../common/find-on-path.ts";

export const WEBDIS_INSTALL_HINT =
  "webdis is not installed: install it with `apt-get install -y webdis` (Debian/Ubuntu), or set WEBDIS_BIN to its path";

/** WEBDIS_BIN, else `webdis` on the PATH or in the system folders; undefined when there is none. */
export function findWebdis(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.WEBDIS_BIN) return existsSync(env.WEBDIS_BIN) ? env.WEBDIS_BIN : undefined;
  return findOnPath("webdis", env);
}

/** The parts of webdis.json the bench sets (webdis 0.1.x; see /etc/webdis/webdis.json of the package). */
export function webdisConfig(redisUrl: string, httpPort: number, dir: string): Record<string, unknown> {
  const u = new URL(redisUrl);
  if (u.protocol !== "redis:") throw new Error(`webdis speaks plain TCP to Redis: it cannot use ${u.protocol}// URLs`);
  const user = decodeURIComponent(u.username);
  if (user !== "" && user !== "default") throw new Error(`webdis 0.1 authenticates with a password only, not as the Redis user "${user}"`);
  const db = u.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) throw new Error(`the Redis URL's database must be a number, not "${db}"`);
  return {
    redis_host: u.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1",
    redis_port: Number(u.port || 6379),
    redis_auth: u.password ? decodeURIComponent(u.password) : null,
    http_host: "127.0.0.1",
    http_port: httpPort,
    threads: 2,
    daemonize: false,
    database: Number(db || 0),
    verbosity: 3,
    logfile: join(dir, "webdis.log"),
  };
}

export interface Webdis {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  stop(): Promise<void>;
}

/** Starts webdis and resolves once `GET /PING` answers 200 (its Redis connections are up). */
export async function startWebdis({
  bin,
  redisUrl,
  onLine,
  timeoutMs = 10_000,
}: {
  bin: string;
  redisUrl: string;
  onLine: (line: string) => void;
  timeoutMs?: number;
}): Promise<Webdis> {
  const dir = await mkdtemp(join(tmpdir(), "workyard-webdis-"));
  const removeOnExit = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", removeOnExit);
  const removeDir = async () => {
    process.off("exit", removeOnExit);
    await rm(dir, { recursive: true, force: true });
  };
  const logTail = () => {
    try {
      return readFileSync(join(dir, "webdis.log"), "utf8").trim().split("\n").slice(-5).join("\n");
    } catch {
      return "(no log)";
    }
  };
  // libevent in webdis 0.1.x warns once per connection that the client closes ("Epoll ADD(4) on fd N failed
  // ... Bad file descriptor"), i.e. for each of autocannon's connections at the end of every run: the first
  // is shown, the others counted.
  let epollWarnings = 0;
  const output = (line: string) => {
    if (/Epoll ADD\(\d+\) on fd \d+ failed/.test(line) && epollWarnings++ > 0) return;
    onLine(line);
  };
  let child: ReturnType<typeof execa> | undefined;
  const stop = async () => {
    if (child && child.nodeChildProcess.exitCode === null && child.nodeChildProcess.signalCode === null) {
      const running = child;
      running.kill("SIGTERM");
      const timer = setTimeout(() => running.kill("SIGKILL"), 5000);
      await running;
      clearTimeout(timer);
    }
    if (epollWarnings > 1)
      onLine(`(${epollWarnings - 1} more of libevent's "Epoll ADD ... failed" warnings, one per closed client connection)`);
    epollWarnings = 0;
    await removeDir();
  };
  try {
    const port = await freePort();
    const configFile = join(dir, "webdis.json");
    await writeFile(configFile, `${JSON.stringify(webdisConfig(redisUrl, port, dir), null, 2)}\n`, { mode: 0o600 });
    // Without a readable config file webdis serves on its defaults (every interface, port 7379): it is written first.
    const proc = execa(bin, [configFile], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], reject: false, buffer: false, cleanup: true });
    child = proc;
    for (const stream of [proc.stdout, proc.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        for (const line of chunk.split("\n")) if (line.trim() !== "") output(line);
      });
    }
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proc.nodeChildProcess.exitCode !== null || proc.nodeChildProcess.signalCode !== null)
        throw new Error(
          `webdis exited (code ${proc.nodeChildProcess.exitCode ?? proc.nodeChildProcess.signalCode}) before it answered; its log:\n${logTail()}`,
        );
      const res = await fetch(`${url}/PING`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      if (res?.status === 200) {
        await res.text();
        return { url, stop };
      }
      await res?.text();
      if (Date.now() > deadline) throw new Error(`webdis did not answer GET /PING with 200 within ${timeoutMs} ms; its log:\n${logTail()}`);
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
