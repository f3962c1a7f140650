/** The bench's own arithmetic: CPU per request from /proc, the median round, the CPU column, answers of another status, ratios. */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { cpuPerRequest, descendantCpu, parseStat } from "../../lib/node/bench/process-cpu.ts";
import { compare, cpuBreakdown, ratioTable } from "../../lib/node/bench/report.ts";
import { medianRound } from "../../lib/node/bench/runner.ts";
import type { ScenarioResult } from "../../lib/node/bench/scenario.ts";
import { summarize } from "../../lib/node/bench/load.ts";
import type { Result } from "autocannon";

describe("CPU per request", () => {
  it("reads a /proc stat line whose command name holds spaces and parentheses", () => {
    const line = "4242 (work (er) d) S 4200 4242 4200 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 4 0 100 1000 200";
    expect(parseStat(line)).toEqual({ ppid: 4200, ticks: 280 });
  });

  it("counts the CPU a child process used, by the script it runs", async () => {
    const child = spawn(process.execPath, ["-e", "const end = Date.now() + 300; while (Date.now() < end);"], { stdio: "ignore" });
    await once(child, "spawn");
    const before = descendantCpu();
    await new Promise((resolve) => setTimeout(resolve, 150));
    const after = descendantCpu();
    const cpu = cpuPerRequest(before, after, 1000);
    await once(child, "exit");
    // A busy child over ~150 ms: tens of ms of CPU, spread over 1,000 "requests".
    expect(cpu?.byProcess.node ?? 0).toBeGreaterThan(20);
    expect(cpu?.total).toBeGreaterThanOrEqual(cpu?.byProcess.node ?? 0);
  });

  it("lists the busiest processes first, leaving out those under 1 µs", () => {
    expect(cpuBreakdown({ "collector-server.ts": 19.4, workerd: 125.2, pgbouncer: 0.4 })).toBe("workerd 125, collector-server.ts 19");
  });
});

describe("the median round", () => {
  const round = (rps: number, cpu: number, non200 = 0): ScenarioResult => ({
    name: "x",
    url: "http://x",
    rps,
    p50Ms: 1,
    p99Ms: 2,
    meanMs: 1,
    non200,
    errors: 0,
    timeouts: 0,
    responses: rps,
    durationSeconds: 1,
    statusCodes: {},
    rpsRounds: [],
    cpuUs: { total: cpu, byProcess: { workerd: cpu } },
  });

  it("takes the median throughput and, on its own, the median CPU; sums what went wrong", () => {
    const m = medianRound([round(100, 90), round(300, 40, 1), round(200, 60, 2)]);
    expect(m?.rps).toBe(200);
    expect(m?.cpuUs?.total).toBe(60);
    expect(m?.rpsRounds).toEqual([100, 300, 200]);
    expect(m?.non200).toBe(3);
    const skewed = medianRound([round(100, 50), round(300, 70), round(200, 90)]);
    expect([skewed?.rps, skewed?.cpuUs?.total]).toEqual([200, 70]);
    const counted = medianRound([
      { ...round(100, 50), instructionsPerRequest: 330_000 },
      { ...round(300, 50), instructionsPerRequest: 310_000 },
      { ...round(200, 50), instructionsPerRequest: 350_000 },
    ]);
    expect(counted?.instructionsPerRequest).toBe(330_000);
  });
});

describe("answers of another status", () => {
  // The parts of an autocannon result summarize() reads.
  const result = {
    url: "http://127.0.0.1:1/",
    duration: 2,
    requests: { total: 100 },
    latency: { p50: 1, p99: 3, mean: 1.2 },
    errors: 0,
    timeouts: 0,
    statusCodeStats: { "200": { count: 4 }, "503": { count: 96 } },
  } as unknown as Result;

  it("counts answers other than 200 by default, and other than the setup's status when it says (the open breaker's 503)", () => {
    expect(summarize("row", result).non200).toBe(96);
    expect(summarize("row", result, 503).non200).toBe(4);
    expect(summarize("row", result, 503).rps).toBe(50);
  });
});

describe("ratios, both ways", () => {
  const result = (name: string, rps: number, cpu: number) =>
    ({ name, rps, cpuUs: { total: cpu, byProcess: {} } }) as unknown as Parameters<typeof compare>[0][number];
  const rows = [result("ours", 9_000, 60), result("theirs", 10_000, 40)];
  const comparison = [{ name: "ours / theirs", a: "ours", b: "theirs", target: 0.8 }];

  it("judges a target by throughput on a quiet machine, by CPU per request on a busy one, and shows both", () => {
    expect(compare(rows, comparison)[0]).toMatchObject({ ratio: 0.9, judgedBy: "rps", result: "PASS" });
    expect(compare(rows, comparison, { busy: true })[0]).toMatchObject({ judgedBy: "cpu", result: "BELOW TARGET" });
    expect(compare(rows, comparison)[0]?.cpuRatio).toBeCloseTo(40 / 60);
    expect(ratioTable(compare(rows, comparison, { busy: true }))).toMatch(
      /\| ours \/ theirs \|\s+0\.90x \|\s+0\.67x \| >= 0\.8x \| BELOW TARGET \(by CPU\) \|/,
    );
  });
});
