/**
 * Starting the servers scenarios load, each on a free loopback port, each with a stop() that ends every
 * process it started. If starting fails halfway, what was started is stopped before the error is thrown.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { listenSocket } from "../listen-socket.ts";
import { INTERNAL_TOKEN_VAR } from "../serve-config.ts";
import { startWorkerd, waitUntilAnswering } from "../workerd-process.ts";
import type { WorkerdProcess } from "../workerd-process.ts";
import { startChildServer } from "./child-server.ts";
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
  const server = await startChildServer({
    what: "the Node server",
    file: process.execPath,
    args: ["--import", "tsx", entry, modulePath],
    env: { NODE_ENV: "production", WORKYARD_BENCH_VARS: JSON.stringify(vars) },
    cwd,
    onLine,
    timeoutMs,
  });
  return { url: `http://${HOST}:${server.port}${path}`, stop: server.stop };
}
