/**
 * Liveness of a workerd process: every `intervalMs` the supervisor asks its probe socket for /healthz (no I/O
 * behind it). workerd runs every isolate of a process on one thread, so a function stuck in a loop stalls the whole
 * process, which keeps running but answers nothing; self-hosted workerd has no CPU limit to stop it. After
 * `failures` checks in a row without an answer, the process is killed, and the supervisor's restart (keep-alive.ts)
 * brings a fresh one up on the same socket while the other processes go on serving.
 */
import { INTERNAL_PATHS } from "../../shared/names.ts";

export interface LivenessOptions {
  /** http://127.0.0.1:<port> of the process's own probe socket. */
  probeUrl: string;
  token: string;
  pid: number;
  /** Resolves when the process exits: the watch ends with it. */
  exited: Promise<unknown>;
  intervalMs: number;
  failures: number;
  log: (line: string) => void;
  /** Default: SIGKILL (a stuck thread does not run a SIGTERM handler's drain anyway). */
  kill?: (pid: number) => void;
}

export interface LivenessWatch {
  stop(): void;
}

/** WORKYARD_LIVENESS_INTERVAL_MS: how often, default 5000; 0 turns the watch off. */
export function livenessInterval(value: string | undefined): number {
  if (value === undefined || value === "") return 5000;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`WORKYARD_LIVENESS_INTERVAL_MS must be a whole number of milliseconds, 0 to turn the check off (got "${value}")`);
  return n;
}

/** Starts watching one process; the watch stops by itself when the process exits. */
export function watchLiveness(o: LivenessOptions): LivenessWatch {
  let missed = 0;
  let checking = false;
  let stopped = false;
  const kill = o.kill ?? ((pid: number) => process.kill(pid, "SIGKILL"));
  const check = async () => {
    if (checking || stopped) return;
    checking = true;
    try {
      const res = await fetch(`${o.probeUrl}${INTERNAL_PATHS.healthz}`, {
        headers: { authorization: `Bearer ${o.token}` },
        signal: AbortSignal.timeout(Math.min(2000, Math.max(200, o.intervalMs))),
      });
      await res.arrayBuffer();
      missed = res.ok ? 0 : missed + 1;
    } catch {
      missed += 1;
    } finally {
      checking = false;
    }
    if (missed >= o.failures && !stopped) {
      stop();
      o.log(
        `workerd ${o.pid} has not answered /healthz for ${o.failures} checks in a row (a function may be stuck in a loop, ` +
          "which stalls its whole process): killing it; it is restarted on the same socket",
      );
      try {
        kill(o.pid);
      } catch {
        // already gone
      }
    }
  };
  const timer = setInterval(() => void check(), o.intervalMs);
  timer.unref();
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  void o.exited.then(stop);
  return { stop };
}
