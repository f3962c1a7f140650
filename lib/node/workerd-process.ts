/**
 * Running workerd (the pinned binary from the `workerd` npm package) on a release's config, with its
 * public socket handed over as fd 3, and knowing when it answers.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { spawn } from "node:child_process";
import type { ListenSocket } from "./listen-socket.ts";
import { CONFIG_FILE, INTERNAL_SOCKET, PUBLIC_SOCKET } from "./serve-config.ts";

const require = createRequire(import.meta.url);

/** Path of the workerd binary shipped in the pinned npm package. */
export function workerdBinary(): string {
  return (require("workerd") as { default: string }).default;
}

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
  /** The process environment workerd sees: secrets bound with fromEnvironment are read from it. */
  env: Record<string, string>;
  /** Each line workerd writes to stdout or stderr. */
  onLine: (line: string, stream: "stdout" | "stderr") => void;
}

/** Starts workerd serving the release; the caller's copy of the socket is closed once workerd has it. */
export function startWorkerd({ releaseDir, socket, internalSocket, env, onLine }: WorkerdStartOptions): WorkerdProcess {
  // --experimental: the internal worker fires scheduled() through a service binding
  // (compatibility flag service_binding_extra_handlers), which workerd only allows as experimental.
  const args = ["serve", join(releaseDir, CONFIG_FILE), "--experimental", "--socket-fd", `${PUBLIC_SOCKET}=3`, "--socket-fd", `${INTERNAL_SOCKET}=4`];
  const child = spawn(workerdBinary(), args, {
    cwd: releaseDir,
    env,
    stdio: ["ignore", "pipe", "pipe", socket.fd, internalSocket.fd],
  });
  socket.close();
  internalSocket.close();
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
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`workerd did not answer ${url} within ${timeoutMs} ms`);
}
