/**
 * Starting the servers scenarios load, each on a free loopback port, each with a stop() that ends every
 * process it started. If starting fails halfway, what was started is stopped before the error is thrown.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeDenoTargets } from "../build/deno-target.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { denoBinary, denoRunArgs } from "../deno/command.ts";
import { heldSocket } from "../runtime/listen-socket.ts";
import { CONFIG_FILE, INTERNAL_TOKEN_VAR } from "../build/serve-config.ts";
import { startProbedWorkerd } from "../runtime/workerd-pool.ts";
import type { WorkerdProcess } from "../runtime/workerd-process.ts";
import { startChildServer } from "./child-server.ts";
import type { RunningScenario } from "./scenario.ts";

const HOST = "127.0.0.1";
const collectorEntry = fileURLToPath(new URL("./collector-server.ts", import.meta.url));

export interface WorkerdServerOptions {
  /** Folder holding the `workerd.capnp` to serve (a release folder, or one with a generated config). */
  configDir: string;
  /** Path requested on the socket, e.g. "/hello". */
  path: string;
  /** The process environment workerd sees (secrets bound with fromEnvironment). */
  env?: Record<string, string>;
  /** How many workerd processes share the socket (default 1). */
  processes?: number;
  /** Each line workerd prints. */
  onLine: (line: string) => void;
  /** The release the config serves, for the collector's source maps (default `configDir`). */
  releaseDir?: string;
  /** With a collector receiving the traces, as under `npm start` (default); without, nothing is traced. */
  traced?: boolean;
  /** How long each process may take to answer (default 15 s; workerd under valgrind needs far longer). */
  readyTimeoutMs?: number;
}

/** A running workerd setup: its URL, its processes (for their memory) and how to stop it all. */
export interface RunningWorkerd extends RunningScenario {
  pids: number[];
}

/** The collector in a process of its own, and the environment that points workerd at it. */
async function startCollectorChild(
  releaseDir: string,
  onLine: (line: string) => void,
): Promise<{ env: Record<string, string>; stop(): Promise<void> }> {
  const token = randomBytes(24).toString("base64url");
  const child = await startChildServer({
    what: "the collector",
    file: process.execPath,
    args: [collectorEntry, releaseDir],
    env: { NODE_ENV: "production", WORKYARD_COLLECTOR_TOKEN: token },
    cwd: process.cwd(),
    onLine: (line) => onLine(`collector: ${line}`),
  });
  return { env: { WORKYARD_COLLECTOR_URL: `http://${HOST}:${child.port}`, WORKYARD_COLLECTOR_TOKEN: token }, stop: child.stop };
}

/**
 * workerd serving `configDir/workerd.capnp` as `npm start` runs it: `processes` workerd processes sharing the
 * public and internal sockets (made here on free loopback ports and handed over as fds), each with its own
 * probe socket, a fresh internal token in their environment, and (traced) the collector in a process of its
 * own receiving their traces.
 */
export async function serveWorkerd({
  configDir,
  path,
  env = {},
  processes = 1,
  onLine,
  releaseDir = configDir,
  traced = true,
  readyTimeoutMs = 15_000,
}: WorkerdServerOptions): Promise<RunningWorkerd> {
  const collector = traced ? await startCollectorChild(releaseDir, onLine) : { env: {}, stop: async () => {} };
  const socket = await heldSocket(HOST, 0).catch(async (err: unknown) => {
    await collector.stop();
    throw err;
  });
  const internalSocket = await heldSocket(HOST, 0).catch(async (err: unknown) => {
    socket.close();
    await collector.stop();
    throw err;
  });
  const token = randomBytes(24).toString("base64url");
  const started: WorkerdProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((p) => p.stop(5000)));
    socket.close();
    internalSocket.close();
    // After workerd, so the last traces arrive.
    await collector.stop();
  };
  try {
    for (let i = 0; i < processes; i++) {
      const { proc } = await startProbedWorkerd({
        // In the release folder, as npm start runs it (disk services' paths, a function's stored assets, are relative
        // to it), with a config that may be written elsewhere.
        releaseDir,
        configFile: join(configDir, CONFIG_FILE),
        publicSocket: socket,
        internalSocket,
        env: { [INTERNAL_TOKEN_VAR]: token, ...collector.env, ...env },
        internalToken: token,
        readiness: "/healthz",
        readyTimeoutMs,
        failedStopGraceMs: 5000,
        onLine: (line) => onLine(processes > 1 ? `#${i + 1} ${line}` : line),
      });
      started.push(proc);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `http://${HOST}:${socket.port}${path}`, pids: started.map((p) => p.pid), stop };
}

export interface NodeServerOptions {
  /** The function's source module (its default export is the Hono app), run by Node from source. */
  modulePath: string;
  /** Handed to app.fetch as its env (the function's vars). */
  vars: Record<string, unknown>;
  path: string;
  /** Working folder: the project root, where packages resolve from. */
  cwd: string;
  onLine: (line: string) => void;
  timeoutMs?: number;
}

/** A function's Hono app on Node (@hono/node-server), in a child process. */
export async function serveOnNode({
  modulePath,
  vars,
  path,
  cwd,
  onLine,
  timeoutMs = 30_000,
}: NodeServerOptions): Promise<RunningScenario> {
  const entry = fileURLToPath(new URL("./node-server.ts", import.meta.url));
  // The vars go through the environment, not the command line, where `ps` would show any secret among them.
  const server = await startChildServer({
    what: "the Node server",
    file: process.execPath,
    args: [entry, modulePath],
    env: { NODE_ENV: "production", WORKYARD_BENCH_VARS: JSON.stringify(vars) },
    cwd,
    onLine,
    timeoutMs,
  });
  return { url: `http://${HOST}:${server.port}${path}`, stop: server.stop };
}

/** A function's app on Deno (Deno.serve, lib/deno/bench-server.ts), in a child process: the Deno row beside Node's. */
export async function serveOnDeno({
  paths,
  modulePath,
  vars,
  path,
  onLine,
  timeoutMs = 60_000,
}: Omit<NodeServerOptions, "cwd"> & { paths: ProjectPaths }): Promise<RunningScenario> {
  // The SDK's #workyard/* imports resolve through the import map the Deno targets use.
  await writeDenoTargets(paths, []);
  const server = await startChildServer({
    what: "the Deno server",
    file: denoBinary(paths, process.env),
    args: denoRunArgs(paths, join(paths.root, "lib/deno/bench-server.ts"), [modulePath]),
    env: { WORKYARD_BENCH_VARS: JSON.stringify(vars), DENO_DIR: join(paths.work, "deno-cache") },
    cwd: paths.root,
    onLine,
    timeoutMs,
  });
  return { url: `http://${HOST}:${server.port}${path}`, stop: server.stop };
}
