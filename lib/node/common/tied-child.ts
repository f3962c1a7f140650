/**
 * Spawning the long-running children the supervisor owns (workerd, PgBouncer) so that their lives follow the
 * supervisor's, and nobody else's:
 * - util-linux's setpriv (Essential on Debian) sets a parent-death signal and then execs the program in its place: if
 *   this process is killed outright (SIGKILL, the OOM killer), the kernel kills the child too instead of leaving it
 *   serving. Where setpriv is missing, the program runs directly and only the caller's exit hook takes it down.
 * - Each child leads its own process group, so a terminal's Ctrl-C (sent to the whole foreground group) reaches only
 *   the supervisor, which then stops its children in order (draining workerd first) instead of every process
 *   dying at once and the supervisor reporting crashes it did not see coming.
 */
import { spawn } from "node:child_process";
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { existsSync } from "node:fs";

const SETPRIV = "/usr/bin/setpriv";

/** True where children can be tied (Linux with setpriv). */
export const canTie = (): boolean => process.platform === "linux" && existsSync(SETPRIV);

/** A user to run a tied child as: setpriv switches to it before it sets the parent-death signal. */
export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Spawns `file` tied to this process (see above). A program that must not run as root is given `runAs` rather than
 * switching user itself (`pgbouncer -u nobody`): the kernel clears the parent-death signal when a process changes its
 * own user, so a program that switches after setpriv has run outlives a supervisor killed with SIGKILL.
 */
export function spawnTied(file: string, args: string[], options: SpawnOptions, runAs?: RunAs): ChildProcess {
  const tied = canTie();
  if (runAs && !tied) throw new Error(`cannot run ${file} as uid ${runAs.uid} without ${SETPRIV}`);
  const user = runAs ? [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, "--clear-groups"] : [];
  return spawn(tied ? SETPRIV : file, tied ? [...user, "--pdeathsig", "KILL", "--", file, ...args] : args, { ...options, detached: true });
}
