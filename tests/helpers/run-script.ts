/**
 * Runs scripts/<script> on this Node, as `npm run` does, and captures how it ended. A non-zero exit is an answer
 * (its code), not a rejection: callers that need the script to succeed assert `code` themselves.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

export interface ScriptResult {
  /** The exit code (null when the process was killed by a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node scripts/<script> ...args` from the repository root, with process.env plus env. */
export function runScript(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<ScriptResult> {
  return execFileP(process.execPath, [`scripts/${script}`, ...args], { env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code: number | null; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
}
