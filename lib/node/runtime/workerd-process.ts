/**
 * Running workerd (the one the release keeps, see release-runtime.ts) on a release's config, with its
 * public socket handed over as fd 3, and knowing when it answers.
 */
import { join } from "node:path";
import { spawnTied } from "../common/tied-child.ts";
import type { ListenSocket } from "./listen-socket.ts";
import { releaseWorkerd } from "../releases/runtime.ts";
import { CONFIG_FILE, HTTPS_SOCKET, INTERNAL_SOCKET, PROBE_SOCKET, PUBLIC_SOCKET } from "../build/serve-config.ts";

export interface WorkerdProcess {
  pid: number;
  /** Resolves with the exit code when the process ends, for whatever reason. */
  exited: Promise<number | null>;
  /** SIGTERM (workerd drains in-flight requests), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface WorkerdStartOptions {
  releaseDir: string;
  socket: ListenSocket;
  /** The internal (loopback, token-protected) socket. */
  internalSocket: ListenSocket;
  /** This process's own probe socket (readiness, drain); without one workerd binds any free loopback port. */
  probeSocket?: ListenSocket;
  /** The public HTTPS socket, when TLS is on (the config must then have an `https` socket). */
  httpsSocket?: ListenSocket;
  /** The config file to serve; default the release's own workerd.capnp. */
  configFile?: string;
  /** The process environment workerd sees: secrets bound with fromEnvironment are read from it. */
  env: Record<string, string>;
  /** Each line workerd writes to stdout or stderr. */
  onLine: (line: string, stream: "stdout" | "stderr") => void;
}

/** Starts workerd serving the release; the caller's copy of the socket is closed once workerd has it. */
export function startWorkerd({
  releaseDir,
  socket,
  internalSocket,
  probeSocket,
  httpsSocket,
  configFile,
  env,
  onLine,
}: WorkerdStartOptions): WorkerdProcess {
  // --experimental: the internal worker fires scheduled() through a service binding
  // (compatibility flag service_binding_extra_handlers), which workerd only allows as experimental.
  const args = [
    "serve",
    configFile ?? join(releaseDir, CONFIG_FILE),
    "--experimental",
    "--socket-fd",
    `${PUBLIC_SOCKET}=3`,
    "--socket-fd",
    `${INTERNAL_SOCKET}=4`,
  ];
  // Optional sockets take the next descriptors, in this order.
  const extra = [
    ...(probeSocket ? [{ name: PROBE_SOCKET, socket: probeSocket }] : []),
    ...(httpsSocket ? [{ name: HTTPS_SOCKET, socket: httpsSocket }] : []),
  ];
  extra.forEach((e, i) => args.push("--socket-fd", `${e.name}=${5 + i}`));
  const child = spawnTied(releaseWorkerd(releaseDir), args, {
    cwd: releaseDir,
    env,
    stdio: ["ignore", "pipe", "pipe", socket.fd, internalSocket.fd, ...extra.map((e) => e.socket.fd)],
  });
  socket.close();
  internalSocket.close();
  for (const e of extra) e.socket.close();
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", (err) => {
      onLine(`could not start workerd: ${err.message}`, "stderr");
      resolve(null);
    });
  });
  // If this process dies without stopping workerd, take it down too (no orphaned servers).
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  void exited.then(() => process.off("exit", killOnExit));
  for (const stream of ["stdout", "stderr"] as const) {
    let rest = "";
    child[stream]?.setEncoding("utf8");
    child[stream]?.on("data", (chunk: string) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) if (line.trim() !== "") onLine(line, stream);
    });
  }
  return {
    pid: child.pid ?? -1,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves once `url` answers any HTTP response; rejects if the process exits first or `timeoutMs` passes. */
export async function waitUntilAnswering(url: string, proc: WorkerdProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void proc.exited.then((code) => {
    exitCode = code;
  });
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`workerd exited (code ${exitCode}) before it answered; see its output above`);
    try {
      // redirect: "manual": with TLS on, the HTTP socket answers a redirect, and any answer means it is up.
      await fetch(url, { signal: AbortSignal.timeout(1000), redirect: "manual" });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`workerd did not answer ${url} within ${timeoutMs} ms`);
}

/**
 * Resolves once `url` (an internal endpoint: /healthz or /readyz on a process's probe socket) answers 200 with
 * the token; rejects with the last answer if the process exits first or `timeoutMs` passes.
 */
export async function waitUntilReady(url: string, token: string, proc: WorkerdProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void proc.exited.then((code) => {
    exitCode = code;
  });
  let last = "no answer";
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`workerd exited (code ${exitCode}) before it was ready; see its output above`);
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${body.slice(0, 500)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`workerd was not ready within ${timeoutMs} ms: ${new URL(url).pathname} answered ${last}`);
}
