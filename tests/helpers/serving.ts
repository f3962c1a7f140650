/** A server a test starts as a command (`npm run deno`, `wrangler dev`, `deno serve`), ready once it prints its address. */
import { spawn } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";

export interface Serving {
  /** The address `ready`'s first group matched. */
  url: string;
  child: ChildProcessWithoutNullStreams;
  /** Its stdout and stderr so far. */
  output: () => string;
}

/** Runs `file args` and resolves once its output matches `ready`; rejects if it exits first or takes over `timeoutMs`. */
export function startServing(
  what: string,
  file: string,
  args: string[],
  { cwd, env = process.env, ready, timeoutMs = 90_000 }: { cwd?: string; env?: NodeJS.ProcessEnv; ready: RegExp; timeoutMs?: number },
  onStart: (child: ChildProcessWithoutNullStreams, output: () => string) => void = () => {},
): Promise<Serving> {
  const child = spawn(file, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end();
  let text = "";
  const output = () => text;
  onStart(child, output);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs / 1000} s:\n${text}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const found = ready.exec(text);
      if (found?.[1]) {
        clearTimeout(timer);
        resolve({ url: found[1], child, output });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it served:\n${text}`));
    });
  });
}
