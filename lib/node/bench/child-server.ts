/**
 * A server the bench runs as a child process of its own (so that it does not share a thread with the load
 * generator) and that prints `{"port":N}` once it listens: its port, and a stop() that ends it (SIGTERM,
 * SIGKILL after 5 s). If it exits or stays silent before listening, the error says so and it is stopped.
 */
import { execa } from "execa";

export interface ChildServerOptions {
  /** What it is, for messages: "the Redis proxy". */
  what: string;
  file: string;
  args: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
  cwd: string;
  /** Each line it prints on stderr. */
  onLine: (line: string) => void;
  timeoutMs?: number;
}

export interface ChildServer {
  port: number;
  stop(): Promise<void>;
}

export async function startChildServer({
  what,
  file,
  args,
  env = {},
  cwd,
  onLine,
  timeoutMs = 30_000,
}: ChildServerOptions): Promise<ChildServer> {
  const child = execa(file, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], reject: false, buffer: false, cleanup: true });
  const exited = child.then((r) => r.exitCode ?? null);
  const stop = async () => {
    if (child.nodeChildProcess.exitCode !== null || child.nodeChildProcess.signalCode !== null) return;
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
      const timer = setTimeout(() => reject(new Error(`${what} did not listen within ${timeoutMs} ms`)), timeoutMs);
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
        reject(new Error(`${what} exited (code ${code}) before it listened; see its output above`));
      });
    });
    return { port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
