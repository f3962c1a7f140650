/**
 * A generation: N workerd processes serving one release, all accepting on the same inherited public and
 * internal sockets, each with its own probe socket, each restarted (with backoff) on its own when it dies.
 * A deploy starts the next generation beside the live one, checks the readiness of each new process on its
 * own probe socket, then drains and stops the old generation (see lib/workers/drain.ts for why a drain).
 */
import { availableParallelism } from "node:os";
import { keepAlive } from "./keep-alive.ts";
import type { KeepAlive } from "./keep-alive.ts";
import { watchLiveness } from "./liveness.ts";
import { listenSocket } from "./listen-socket.ts";
import type { HeldSocket } from "./listen-socket.ts";
import { startWorkerd, waitUntilReady } from "./workerd-process.ts";
import type { WorkerdProcess } from "./workerd-process.ts";
import { INTERNAL_PATHS } from "../../shared/names.ts";

/** How long an old process holds new requests before it is stopped, and how long before that SIGTERM is sent. */
export const DRAIN_HOLD_MS = 1500;
const SIGTERM_BEFORE_RELEASE_MS = 500;
/** Requests in flight get this long to finish after SIGTERM (a function's deadline is 30 s by default). */
const STOP_GRACE_MS = 35_000;

export interface PooledWorkerd extends WorkerdProcess {
  /** This process's own probe socket: http://127.0.0.1:<port>. */
  probeUrl: string;
  /** Ends the liveness watch (before a drain: a stopping process stops answering on purpose). */
  unwatch(): void;
}

export interface ProbedWorkerdOptions {
  releaseDir: string;
  publicSocket: HeldSocket;
  internalSocket: HeldSocket;
  /** The public HTTPS socket, when TLS is on. */
  httpsSocket?: HeldSocket;
  /** The config to serve instead of the release's own (TLS adds the https socket). */
  configFile?: string;
  /** The environment workerd sees (secrets, the internal token, readiness targets); it must hold `internalToken`. */
  env: Record<string, string>;
  internalToken: string;
  /** What the process must answer 200 to on its probe socket before it counts as started. */
  readiness: "/healthz" | "/readyz";
  /** Default: waitUntilReady's. */
  readyTimeoutMs?: number;
  /** How long the process gets after SIGTERM when it is stopped for never becoming ready (default 1000). */
  failedStopGraceMs?: number;
  onLine: (line: string, stream: "stdout" | "stderr") => void;
}

export interface GenerationOptions extends Omit<ProbedWorkerdOptions, "onLine" | "failedStopGraceMs"> {
  processes: number;
  /** Each line a process prints, with its index in the generation. */
  onLine: (line: string, index: number, stream: "stdout" | "stderr") => void;
  /** How often each process's /healthz is checked (liveness.ts); 0: never. Default 5000. */
  livenessIntervalMs?: number;
  log: (line: string) => void;
  onFatal?: (err: Error) => void;
}

export interface Generation {
  releaseDir: string;
  /** The processes serving now (a restarted one replaces its predecessor). */
  members(): PooledWorkerd[];
  /** Drains every process (holding new requests, see drain.ts), then stops it; resolves when all have exited. */
  drainAndStop(): Promise<void>;
  /** Stops every process at once (SIGTERM: in-flight requests finish), without a drain. */
  stop(): Promise<void>;
}

/** WORKERD_PROCESSES: a positive integer, default one per core. */
export function processCount(value: string | undefined): number {
  if (value === undefined || value === "") return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`WORKERD_PROCESSES must be a whole number from 1 to 256 (got "${value}")`);
  return n;
}

/**
 * Starts one workerd process on the shared public and internal sockets (lent to it) with a probe socket of its
 * own, and resolves once it answers `readiness` there; a process that never becomes ready is stopped first.
 */
export async function startProbedWorkerd(opts: ProbedWorkerdOptions): Promise<{ proc: WorkerdProcess; probeUrl: string }> {
  const probe = await listenSocket("127.0.0.1", 0);
  const probeUrl = `http://127.0.0.1:${probe.port}`;
  const proc = startWorkerd({
    releaseDir: opts.releaseDir,
    socket: opts.publicSocket.lend(),
    internalSocket: opts.internalSocket.lend(),
    probeSocket: probe,
    ...(opts.httpsSocket ? { httpsSocket: opts.httpsSocket.lend() } : {}),
    ...(opts.configFile ? { configFile: opts.configFile } : {}),
    env: opts.env,
    onLine: opts.onLine,
  });
  try {
    await waitUntilReady(`${probeUrl}${opts.readiness}`, opts.internalToken, proc, opts.readyTimeoutMs);
  } catch (err) {
    await proc.stop(opts.failedStopGraceMs ?? 1000);
    throw err;
  }
  return { proc, probeUrl };
}

async function startMember(opts: GenerationOptions, index: number, readiness: GenerationOptions["readiness"]): Promise<PooledWorkerd> {
  const { proc, probeUrl } = await startProbedWorkerd({
    releaseDir: opts.releaseDir,
    publicSocket: opts.publicSocket,
    internalSocket: opts.internalSocket,
    httpsSocket: opts.httpsSocket,
    configFile: opts.configFile,
    env: opts.env,
    internalToken: opts.internalToken,
    readiness,
    readyTimeoutMs: opts.readyTimeoutMs,
    onLine: (line, stream) => opts.onLine(line, index, stream),
  });
  const interval = opts.livenessIntervalMs ?? 5000;
  const watch =
    interval > 0
      ? watchLiveness({
          probeUrl,
          token: opts.internalToken,
          pid: proc.pid,
          exited: proc.exited,
          intervalMs: interval,
          failures: 3,
          log: opts.log,
        })
      : undefined;
  return {
    ...proc,
    probeUrl,
    unwatch: () => watch?.stop(),
    stop: (graceMs?: number) => {
      watch?.stop();
      return proc.stop(graceMs);
    },
  };
}

async function drainOne(proc: PooledWorkerd, token: string, log: (line: string) => void): Promise<void> {
  proc.unwatch();
  try {
    const res = await fetch(`${proc.probeUrl}${INTERNAL_PATHS.drain}?holdMs=${DRAIN_HOLD_MS}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2000),
    });
    if (!res.ok) throw new Error(`answered ${res.status} ${(await res.text()).slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, DRAIN_HOLD_MS - SIGTERM_BEFORE_RELEASE_MS));
  } catch (err) {
    // Still stop it: SIGTERM alone finishes in-flight requests, only idle keep-alive connections may be cut.
    log(`workerd ${proc.pid}: could not drain (${(err as Error).message}); stopping it anyway`);
  }
  await proc.stop(STOP_GRACE_MS);
}

/** Starts `processes` workerd processes on the release and resolves once each is ready; none is left running on failure. */
export async function startGeneration(opts: GenerationOptions): Promise<Generation> {
  const started = await Promise.allSettled(Array.from({ length: opts.processes }, (_, i) => startMember(opts, i, opts.readiness)));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(started.map((r) => (r.status === "fulfilled" ? r.value.stop(1000) : undefined)));
    throw failed.reason;
  }
  const keeps: KeepAlive<PooledWorkerd>[] = started.map((r, i) =>
    keepAlive({
      name: `workerd #${i + 1}`,
      first: (r as PromiseFulfilledResult<PooledWorkerd>).value,
      // A restart only waits for the process to answer: readiness may fail for a while (a database
      // restarting) and must not count as a failed start.
      restart: () => startMember(opts, i, "/healthz"),
      log: opts.log,
      onFatal: opts.onFatal,
    }),
  );
  return {
    releaseDir: opts.releaseDir,
    members: () => keeps.map((k) => k.current()),
    async drainAndStop() {
      await Promise.all(keeps.map((k) => drainOne(k.release(), opts.internalToken, opts.log)));
    },
    async stop() {
      await Promise.all(keeps.map((k) => k.stop()));
    },
  };
}
