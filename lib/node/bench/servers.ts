/**
 * Starting the servers scenarios load, each on a free loopback port, each with a stop() that ends every
 * process it started. If starting fails halfway, what was started is stopped before the error is thrown.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { listenSocket } from "../listen-socket.ts";
import { INTERNAL_TOKEN_VAR } from "../serve-config.ts";
import { startWorkerd, waitUntilAnswering } from "../workerd-process.ts";
import type { WorkerdProcess } from "../workerd-process.ts";
import type { RunningScenario } from "./scenario.ts";

const HOST = "127.0.0.1";

export interface WorkerdServerOptions {
  /** Folder holding the `workerd.capnp` to serve (a release folder, or one with a generated config). */
  configDir: string;
  /** Path requested on the socket, e.g. "/hello". */
  path: string;
  /** The process environment workerd sees (secrets bound with fromEnvironment). */
  env?: Record<string, string>;
  /** Each line workerd prints. */
  onLine: (line: string) => void;
}

/**
 * workerd serving `configDir/workerd.capnp` as `npm start` runs it: the public and internal sockets
 * made here on free loopback ports and handed over as fds, a fresh internal token in its environment.
 */
export async function serveWorkerd({ configDir, path, env = {}, onLine }: WorkerdServerOptions): Promise<RunningScenario> {
  const socket = await listenSocket(HOST, 0);
  const internalSocket = await listenSocket(HOST, 0).catch((err: unknown) => {
    socket.close();
    throw err;
  });
  let proc: WorkerdProcess;
  try {
    proc = startWorkerd({
      releaseDir: configDir,
      socket,
      internalSocket,
      env: { [INTERNAL_TOKEN_VAR]: randomBytes(24).toString("base64url"), ...env },
      onLine: (line) => onLine(line),
    });
  } catch (err) {
    // Our copies are open until workerd has them; left open they would keep this process alive.
    socket.close();
    internalSocket.close();
    throw err;
  }
  const url = `http://${HOST}:${socket.port}${path}`;
  try {
    await waitUntilAnswering(url, proc);
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return { url, stop: () => proc.stop(5000) };
}

export interface NodeServerOptions {
  /** The function's source module (its default export is the Hono app), run with tsx. */
  modulePath: string;
  /** Handed to app.fetch as its env (the function's vars). */
  vars: Record<string, unknown>;
  path: string;
  /** Working folder: the project root, where tsx resolves from. */
  cwd: string;
  onLine: (line: string) => void;
  timeoutMs?: number;
}

/** A function's Hono app on Node (@hono/node-server), in a child process. */
export async function serveOnNode({ modulePath, vars, path, cwd, onLine, timeoutMs = 30_000 }: NodeServerOptions): Promise<RunningScenario> {
  const entry = fileURLToPath(new URL("./node-server.ts", import.meta.url));
  // The vars go through the environment, not the command line, where `ps` would show any secret among them.
  const child = execa(process.execPath, ["--import", "tsx", entry, modulePath], {
    cwd,
    env: { NODE_ENV: "production", WORKYARD_BENCH_VARS: JSON.stringify(vars) },
    stdio: ["ignore", "pipe", "pipe"],
    reject: false,
    buffer: false,
    cleanup: true,
  });
  const exited = child.then((r) => r.exitCode ?? null);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    for (const line of chunk.split("\n")) if (line.trim() !== "") onLine(line);
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the Node server did not listen within ${timeoutMs} ms`)), timeoutMs);
      let seen = "";
      child.stdout?.setEncoding("utf8");
      child.stdout?.on("data", (chunk: string) => {
        seen += chunk;
        const match = /\{"port":(\d+)\}/.exec(seen);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the Node server exited (code ${code}) before it listened; see its output above`));
      });
    });
    return { url: `http://${HOST}:${port}${path}`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
