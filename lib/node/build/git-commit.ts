/** The git commit a release is built from, for its manifest: null outside a git checkout or without git. */
import { execa } from "execa";

export interface GitCommit {
  commit: string;
  /** True when the working tree had uncommitted changes: the release is not exactly that commit. */
  dirty: boolean;
}

export async function gitCommit(cwd: string): Promise<GitCommit | null> {
  const head = await execa("git", ["rev-parse", "HEAD"], { cwd, reject: false });
  if (head.exitCode !== 0 || !/^[0-9a-f]{40}$/.test(head.stdout.trim())) return null;
  const status = await execa("git", ["status", "--porcelain", "--untracked-files=normal"], { cwd, reject: false });
  return { commit: head.stdout.trim(), dirty: status.exitCode !== 0 || status.stdout.trim() !== "" };
}
