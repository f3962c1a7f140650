/**
 * Runs scenarios one after another (never two at once: they would share the cores) and collects their
 * results. Each scenario's servers are stopped before the next one starts, also when it fails or the run
 * is aborted. With several rounds the whole list is run again, so a burst of noise from elsewhere on the
 * machine hits one round of one setup rather than a whole setup; each setup reports its median round.
 */
import { measure } from "./load.ts";
import type { BenchRequest, LoadOptions, Scenario, ScenarioResult } from "./scenario.ts";

export interface ScenarioFailure {
  name: string;
  error: string;
}

export interface RunOptions extends LoadOptions {
  signal?: AbortSignal;
  log: (line: string) => void;
}

/** Fails unless the request answers `status` (200 unless the setup says): a benchmark of error pages measures nothing. */
async function preflight(url: string, request: BenchRequest | undefined, status: number): Promise<void> {
  const method = request?.method ?? "GET";
  const res = await fetch(url, { method, headers: request?.headers, body: request?.body, signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  if (res.status !== status) throw new Error(`${method} ${url} answered ${res.status}, not ${status}: ${body.slice(0, 300)}`);
}

/**
 * The round with the median throughput (the lower middle one for an even count), with every round's rps;
 * answers of another status, errors and timeouts are summed over all rounds, so none is hidden by the choice of
 * round. The CPU and the instructions per request are each the median of their own, which need not come from the
 * same round.
 */
export function medianRound(rounds: readonly ScenarioResult[]): ScenarioResult | undefined {
  const middle = <T>(sorted: T[]) => sorted[Math.floor((sorted.length - 1) / 2)];
  const median = middle([...rounds].sort((a, b) => a.rps - b.rps));
  const cpu = middle(rounds.flatMap((r) => (r.cpuUs ? [r.cpuUs] : [])).sort((a, b) => a.total - b.total));
  const instructions = middle(
    rounds.flatMap((r) => (r.instructionsPerRequest === undefined ? [] : [r.instructionsPerRequest])).sort((a, b) => a - b),
  );
  const sum = (pick: (r: ScenarioResult) => number) => rounds.reduce((n, r) => n + pick(r), 0);
  return (
    median && {
      ...median,
      ...(cpu ? { cpuUs: cpu } : {}),
      ...(instructions === undefined ? {} : { instructionsPerRequest: instructions }),
      non200: sum((r) => r.non200),
      errors: sum((r) => r.errors),
      timeouts: sum((r) => r.timeouts),
      rpsRounds: rounds.map((r) => r.rps),
    }
  );
}

/** Starts, checks, loads and stops one scenario. */
async function runOne(scenario: Scenario, opts: RunOptions): Promise<ScenarioResult> {
  const running = await scenario.start();
  try {
    if (running.load) {
      opts.log(`  running its own load (${opts.warmupSeconds} s warmup + ${opts.durationSeconds} s, ${opts.connections} connections)`);
      return await running.load(scenario.name, opts);
    }
    const request = running.request;
    const status = running.status ?? 200;
    await preflight(running.url, request, status);
    opts.log(
      `  loading ${request && request.method !== "GET" ? `${request.method} ` : ""}${running.url} ` +
        `(${opts.warmupSeconds} s warmup + ${opts.durationSeconds} s, ${opts.connections} connections` +
        `${status === 200 ? "" : `, each answer expected ${status}`})`,
    );
    return await measure(scenario.name, running.url, request, opts, opts.signal, running.measured, status);
  } finally {
    await running.stop();
  }
}

/** Runs every scenario in turn, `opts.rounds` times; a scenario that fails once is not run again. */
export async function runScenarios(
  scenarios: readonly Scenario[],
  opts: RunOptions,
): Promise<{ results: ScenarioResult[]; failures: ScenarioFailure[] }> {
  const rounds = new Map<string, ScenarioResult[]>(scenarios.map((s) => [s.name, []]));
  const failures: ScenarioFailure[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const scenario of scenarios) {
      if (opts.signal?.aborted) break;
      if (failures.some((f) => f.name === scenario.name)) continue;
      opts.log(`> ${scenario.name}${opts.rounds > 1 ? ` (round ${round} of ${opts.rounds})` : ""}: starting`);
      try {
        const result = await runOne(scenario, opts);
        rounds.get(scenario.name)?.push(result);
        opts.log(
          `  ${Math.round(result.rps)} rps, mean ${result.meanMs} ms, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ` +
            `other status ${result.non200}, errors ${result.errors + result.timeouts}`,
        );
      } catch (err) {
        if (opts.signal?.aborted) break;
        const error = err instanceof Error ? err.message : String(err);
        failures.push({ name: scenario.name, error });
        opts.log(`  FAILED: ${error}`);
      }
    }
  }
  const results = scenarios.flatMap((s) => {
    if (failures.some((f) => f.name === s.name)) return [];
    const median = medianRound(rounds.get(s.name) ?? []);
    return median ? [median] : [];
  });
  return { results, failures };
}
