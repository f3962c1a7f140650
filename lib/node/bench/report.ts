/**
 * Turning results into ratio rows and Markdown tables docs/performance can hold verbatim. Pure functions.
 */
import type { Comparison, ComparisonResult, ScenarioResult } from "./scenario.ts";

/**
 * Ratio rows for the comparisons whose two sides were measured (the others are marked "not run"), each both ways: by
 * throughput and by CPU per request. On a busy machine (`busy`) the load generator and the servers starve together
 * and throughput ratios drift toward 1, so a target is judged by CPU per request there when both sides have it.
 */
export function compare(
  results: readonly ScenarioResult[],
  comparisons: readonly Comparison[],
  { busy = false }: { busy?: boolean } = {},
): ComparisonResult[] {
  return comparisons.map((c) => {
    const a = results.find((r) => r.name === c.a);
    const b = results.find((r) => r.name === c.b);
    if (!a || !b || b.rps === 0) return { ...c, ratio: null, cpuRatio: null, judgedBy: "rps", result: "not run" };
    const ratio = a.rps / b.rps;
    const cpuRatio = a.cpuUs && b.cpuUs && a.cpuUs.total > 0 ? b.cpuUs.total / a.cpuUs.total : null;
    const judgedBy = busy && cpuRatio !== null ? "cpu" : "rps";
    const judged = judgedBy === "cpu" ? (cpuRatio ?? 0) : ratio;
    return { ...c, ratio, cpuRatio, judgedBy, result: c.target === undefined ? "info" : judged >= c.target ? "PASS" : "BELOW TARGET" };
  });
}

function table(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (rightAligned[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (rightAligned[i] ? `${"-".repeat(w + 1)}:` : `${"-".repeat(w + 2)}`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

// "-" where a load of its own reports no such figure (pgbench and redis-benchmark give no percentiles here).
const ms = (v: number) => (Number.isNaN(v) ? "-" : Number.isInteger(v) ? String(v) : v.toFixed(2));

/** "workerd 61, redis-proxy-server.ts 38": the processes that used at least 1 µs a request, the busiest first. */
export function cpuBreakdown(byProcess: Record<string, number>): string {
  return Object.entries(byProcess)
    .filter(([, us]) => us >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => `${name} ${Math.round(us)}`)
    .join(", ");
}

/** setup | rps | p50 ms | p99 ms | mean ms | other status | errors | CPU µs/req | by process */
export function resultsTable(results: readonly ScenarioResult[]): string {
  return table(
    ["setup", "rps", "p50 ms", "p99 ms", "mean ms", "other status", "errors", "CPU µs/req", "by process"],
    results.map((r) => [
      r.name,
      Math.round(r.rps).toLocaleString("en-US"),
      ms(r.p50Ms),
      ms(r.p99Ms),
      ms(r.meanMs),
      String(r.non200),
      String(r.errors + r.timeouts),
      r.cpuUs ? String(Math.round(r.cpuUs.total)) : "-",
      r.cpuUs ? cpuBreakdown(r.cpuUs.byProcess) : "",
    ]),
    [false, true, true, true, true, true, true, true, false],
  );
}

const times = (v: number | null) => (v === null ? "-" : `${v.toFixed(2)}x`);

/** comparison | rps ratio | CPU ratio | target | result (by which ratio) */
export function ratioTable(rows: readonly ComparisonResult[]): string {
  return table(
    ["comparison", "rps ratio", "CPU ratio", "target", "result"],
    rows.map((r) => [
      r.name,
      times(r.ratio),
      times(r.cpuRatio),
      r.target === undefined ? "-" : `>= ${r.target}x`,
      r.result === "PASS" || r.result === "BELOW TARGET" ? `${r.result} (by ${r.judgedBy === "cpu" ? "CPU" : "rps"})` : r.result,
    ]),
    [false, true, true, true, false],
  );
}

/** setup | instructions per request, for the rows counted under callgrind (`--instructions`). */
export function instructionsTable(results: readonly ScenarioResult[]): string | undefined {
  const counted = results.filter((r) => r.instructionsPerRequest !== undefined);
  if (counted.length === 0) return undefined;
  return table(
    ["setup (workerd under callgrind)", "instructions per request"],
    counted.map((r) => [r.name, Math.round(r.instructionsPerRequest ?? 0).toLocaleString("en-US")]),
    [false, true],
  );
}
