/**
 * The benchmark's vocabulary. A scenario is one setup that serves one URL (a workerd config, a Node
 * server ...); a comparison is a ratio row between two scenarios' throughput, with the target the design
 * sets. New rows (database, Redis, proxy, cores) are new scenarios and comparisons, not new runners.
 */

/** A server a scenario started: the URL to load and how to stop everything it started. */
/** What is sent to a scenario's URL; by default a GET without a body. */
export interface BenchRequest {
  method: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
}

export interface RunningScenario {
  url: string;
  /** Sent instead of a plain GET (the Redis proxy is loaded as @upstash/redis calls it: POST / with a token). */
  request?: BenchRequest;
  /** The status every answer should have (default 200; the open-breaker row is loaded on the helper's 503). */
  status?: number;
  /** Around the measured run (after the warmup): e.g. turning an instruction counter on and reading it. */
  measured?: {
    start(): Promise<void>;
    /** Reads what was counted, as figures per request. */
    stop(responses: number): Promise<{ instructionsPerRequest: number }>;
  };
  /** A load of its own instead of HTTP on `url` (the machine's limit rows: pgbench, redis-benchmark; limits.ts). */
  load?: (name: string, opts: LoadOptions & { signal?: AbortSignal }) => Promise<ScenarioResult>;
  stop(): Promise<void>;
}

export interface Scenario {
  /** Shown in the table and matched by `--only`; comparisons refer to it. */
  name: string;
  start(): Promise<RunningScenario>;
}

/** A ratio row: throughput of `a` divided by throughput of `b`. */
export interface Comparison {
  name: string;
  a: string;
  b: string;
  /** The ratio the design asks for (a/b >= target); none for rows that are information only. */
  target?: number;
}

export interface LoadOptions {
  /** Seconds of load whose results are thrown away (JIT, connection setup, caches). */
  warmupSeconds: number;
  /** Seconds of load that are measured. */
  durationSeconds: number;
  connections: number;
  /** Times the whole list is run; each setup reports its median round (this box is noisy). */
  rounds: number;
}

export interface ScenarioResult {
  name: string;
  url: string;
  /** Completed responses per second over the measured run. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Responses whose status was not the one the setup answers (200, or its RunningScenario.status). */
  non200: number;
  /** Connection errors and timeouts. */
  errors: number;
  timeouts: number;
  responses: number;
  durationSeconds: number;
  statusCodes: Record<string, number>;
  /** Throughput of every round, in run order; the fields above are those of the median round. */
  rpsRounds: number[];
  /**
   * CPU microseconds per request of the setup's processes during the measured run (Linux): in all, and by process
   * (workerd, the Redis proxy, PgBouncer ...). The load generator, in the bench's own process, is not counted.
   */
  cpuUs?: { total: number; byProcess: Record<string, number> };
  /** Instructions workerd ran per request, counted by valgrind's callgrind (`--instructions`): repeatable where CPU time is not. */
  instructionsPerRequest?: number;
}

export interface ComparisonResult extends Comparison {
  /** a's rps over b's; null when one side was not run (e.g. `--only`) or answered nothing. */
  ratio: number | null;
  /** b's CPU per request over a's (a's requests per CPU second against b's); null without CPU figures. */
  cpuRatio: number | null;
  /** Which ratio the result was judged by: CPU per request on a busy machine, where throughput ratios drift toward 1. */
  judgedBy: "rps" | "cpu";
  result: "PASS" | "BELOW TARGET" | "info" | "not run";
}
