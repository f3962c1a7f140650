/**
 * Load generation with autocannon, in this process: a warmup run whose numbers are dropped, then the
 * measured run. Bounded by duration, stoppable through an AbortSignal (Ctrl-C).
 */
import autocannon from "autocannon";
import type { Options, Result } from "autocannon";
import { cpuPerRequest, descendantCpu } from "./process-cpu.ts";
import type { BenchRequest, LoadOptions, RunningScenario, ScenarioResult } from "./scenario.ts";

declare module "autocannon" {
  interface Options {
    /** The request body (autocannon README, "API"). */
    body?: string;
  }
}

/** One autocannon run; resolves with its result, or early (partial result) when `signal` aborts. */
function runOnce(
  url: string,
  request: BenchRequest | undefined,
  connections: number,
  seconds: number,
  signal?: AbortSignal,
): Promise<Result> {
  return new Promise((resolve, reject) => {
    // Only the fields that are set: autocannon takes an explicit `method: undefined` for a method.
    const options: Options = { url, connections, duration: seconds, timeout: 10 };
    if (request) {
      options.method = request.method;
      if (request.headers) options.headers = request.headers;
      if (request.body !== undefined) options.body = request.body;
    }
    const instance = autocannon(options, (err, result) => {
      signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(result);
    });
    function onAbort() {
      instance.stop();
    }
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** What the bench keeps of an autocannon result; `status` is the one every answer should have. */
export function summarize(name: string, result: Result, status = 200): ScenarioResult {
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]));
  const responses = result.requests.total;
  return {
    name,
    url: result.url,
    rps: result.duration > 0 ? responses / result.duration : 0,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanMs: result.latency.mean,
    non200: responses - (statusCodes[String(status)] ?? 0),
    errors: result.errors,
    timeouts: result.timeouts,
    responses,
    durationSeconds: result.duration,
    statusCodes,
    rpsRounds: [],
  };
}

/**
 * Warms `url` up, then measures it, sending `request` (default: a plain GET), with the CPU the setup's processes
 * (this process's descendants, process-cpu.ts) used per request during the measured run; answers other than
 * `status` are counted.
 */
export async function measure(
  name: string,
  url: string,
  request: BenchRequest | undefined,
  { warmupSeconds, durationSeconds, connections }: Omit<LoadOptions, "rounds">,
  signal?: AbortSignal,
  measured?: RunningScenario["measured"],
  status = 200,
): Promise<ScenarioResult> {
  if (warmupSeconds > 0) await runOnce(url, request, connections, warmupSeconds, signal);
  signal?.throwIfAborted();
  await measured?.start();
  const before = descendantCpu();
  const result = await runOnce(url, request, connections, durationSeconds, signal);
  const cpu = cpuPerRequest(before, descendantCpu(), result.requests.total);
  const counted = await measured?.stop(result.requests.total);
  signal?.throwIfAborted();
  return { ...summarize(name, result, status), ...(cpu ? { cpuUs: cpu } : {}), ...counted };
}
