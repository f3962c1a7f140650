/**
 * Load generation with autocannon, in this process: a warmup run whose numbers are dropped, then the
 * measured run. Bounded by duration, stoppable through an AbortSignal (Ctrl-C).
 */
import autocannon from "autocannon";
import type { Result } from "autocannon";
import type { LoadOptions, ScenarioResult } from "./scenario.ts";

/** One autocannon run; resolves with its result, or early (partial result) when `signal` aborts. */
function runOnce(url: string, connections: number, seconds: number, signal?: AbortSignal): Promise<Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url, connections, duration: seconds, timeout: 10 }, (err, result) => {
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

/** What the bench keeps of an autocannon result. */
export function summarize(name: string, result: Result): ScenarioResult {
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]));
  const responses = result.requests.total;
  return {
    name,
    url: result.url,
    rps: result.duration > 0 ? responses / result.duration : 0,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanMs: result.latency.mean,
    non200: responses - (statusCodes["200"] ?? 0),
    errors: result.errors,
    timeouts: result.timeouts,
    responses,
    durationSeconds: result.duration,
    statusCodes,
    rpsRounds: [],
  };
}

/** Warms `url` up, then measures it. */
export async function measure(
  name: string,
  url: string,
  { warmupSeconds, durationSeconds, connections }: Omit<LoadOptions, "rounds">,
  signal?: AbortSignal,
): Promise<ScenarioResult> {
  if (warmupSeconds > 0) await runOnce(url, connections, warmupSeconds, signal);
  signal?.throwIfAborted();
  const result = await runOnce(url, connections, durationSeconds, signal);
  signal?.throwIfAborted();
  return summarize(name, result);
}
