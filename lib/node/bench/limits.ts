/**
 * The machine's limit for the bench's reads, so every HTTP row sits between what a user would pick instead and the
 * most this box could do: the same query through the same PgBouncer with pgbench (no HTTP, no runtime), and the
 * same GET straight to Redis with redis-benchmark. Both are loads of their own (not autocannon), measured over the
 * same warm-up and duration with the same number of connections; the load generator's CPU is left out as
 * autocannon's is, and so are PostgreSQL's and Redis's own processes, as in every row (they are not the bench's).
 */
import { execa } from "execa";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cpuPerRequest, descendantCpu } from "./process-cpu.ts";
import type { LoadOptions, ScenarioResult } from "./scenario.ts";

/** A load the bench runs itself instead of loading a URL (RunningScenario.load). */
export type OwnLoad = (name: string, opts: LoadOptions & { signal?: AbortSignal }) => Promise<ScenarioResult>;

const GENERATORS = new Set(["pgbench", "redis-benchmark"]);

/** CPU per request of the setup's processes, without the load generator's. */
function serverCpu(before: ReturnType<typeof descendantCpu>, requests: number) {
  const cpu = cpuPerRequest(before, descendantCpu(), requests);
  if (!cpu) return undefined;
  const byProcess = Object.fromEntries(Object.entries(cpu.byProcess).filter(([name]) => !GENERATORS.has(name)));
  return { total: Object.values(byProcess).reduce((a, b) => a + b, 0), byProcess };
}

function result(name: string, url: string, rps: number, meanMs: number, seconds: number, cpuUs: ScenarioResult["cpuUs"]): ScenarioResult {
  const responses = Math.round(rps * seconds);
  return {
    name,
    url,
    rps,
    p50Ms: NaN,
    p99Ms: NaN,
    meanMs: Math.round(meanMs * 100) / 100,
    non200: 0,
    errors: 0,
    timeouts: 0,
    responses,
    durationSeconds: seconds,
    statusCodes: {},
    rpsRounds: [rps],
    ...(cpuUs ? { cpuUs } : {}),
  };
}

/**
 * pgbench running `query` (one statement, `:id` set to `id`) with the extended protocol, as postgres.js sends it,
 * against `databaseUrl` (the scenario's PgBouncer). `dir` holds the script file.
 */
export function pgbenchLoad(databaseUrl: string, query: string, id: number, dir: string): OwnLoad {
  return async (name, { warmupSeconds, durationSeconds, connections, signal }) => {
    const script = join(dir, "pgbench-read.sql");
    await writeFile(script, `\\set id ${id}\n${query};\n`);
    const u = new URL(databaseUrl);
    const env = { ...process.env, PGPASSWORD: decodeURIComponent(u.password) };
    const args = (seconds: number) => [
      ...["-h", u.hostname, "-p", u.port || "5432", "-U", decodeURIComponent(u.username), "-n", "-M", "extended"],
      ...["-c", String(connections), "-j", "1", "-T", String(seconds), "-f", script, decodeURIComponent(u.pathname.slice(1))],
    ];
    if (warmupSeconds > 0) await execa("pgbench", args(warmupSeconds), { env, cancelSignal: signal });
    const before = descendantCpu();
    const { stdout } = await execa("pgbench", args(durationSeconds), { env, cancelSignal: signal });
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
    const latency = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
    if (!(tps > 0)) throw new Error(`pgbench reported no throughput:\n${stdout.slice(-500)}`);
    return result(name, `pgbench ${u.host}`, tps, latency, durationSeconds, serverCpu(before, tps * durationSeconds));
  };
}

/** redis-benchmark sending `GET key` to the Redis at `redisUrl`. */
export function redisBenchmarkLoad(redisUrl: string, key: string): OwnLoad {
  return async (name, { warmupSeconds, durationSeconds, connections, signal }) => {
    const u = new URL(redisUrl);
    const base = [
      ...["-h", u.hostname || "127.0.0.1", "-p", u.port || "6379", "-c", String(connections), "--csv"],
      ...(u.password ? ["-a", decodeURIComponent(u.password), "--no-auth-warning"] : []),
      ...(u.pathname.length > 1 ? ["--dbnum", u.pathname.slice(1)] : []),
    ];
    const run = async (requests: number) => {
      const { stdout } = await execa("redis-benchmark", [...base, "-n", String(requests), "GET", key], { cancelSignal: signal });
      // "GET bench:greeting","123456.79","0.239",... : the command, requests per second, average latency in ms.
      const row =
        stdout
          .trim()
          .split("\n")
          .at(-1)
          ?.split(",")
          .map((f) => f.replaceAll('"', "")) ?? [];
      const rps = Number(row[1]);
      if (!(rps > 0)) throw new Error(`redis-benchmark reported no throughput:\n${stdout.slice(-500)}`);
      return { rps, meanMs: Number(row[2]) };
    };
    // redis-benchmark counts requests, not seconds: a short run finds the rate, the measured one lasts about the duration.
    const probe = await run(20_000);
    if (warmupSeconds > 0) await run(Math.round(probe.rps * warmupSeconds));
    const before = descendantCpu();
    const requests = Math.max(20_000, Math.round(probe.rps * durationSeconds));
    const measured = await run(requests);
    return result(name, `redis-benchmark ${u.host}`, measured.rps, measured.meanMs, requests / measured.rps, serverCpu(before, requests));
  };
}
