/**
 * CPU time of the processes a benchmark setup runs, from /proc (Linux): every live descendant of this process
 * (workerd, the Redis proxy, the collector, a Node server, PgBouncer, webdis), read before and after the measured
 * load, so that a setup is priced in CPU per request as well as in throughput. The load generator runs in this
 * process and is left out. Elsewhere than Linux there is no /proc and nothing is reported.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";

const hasProc = existsSync("/proc/self/stat");
let ticksPerSecond: number | undefined;
const clockTicks = () => (ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100);

interface ProcStat {
  ppid: number;
  /** utime + stime, in clock ticks. */
  ticks: number;
}

/** /proc/<pid>/stat's parent and CPU fields; the command name in parentheses may hold spaces. */
export function parseStat(text: string): ProcStat | undefined {
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // After the name: state(3) ppid(4) ... utime(14) stime(15), numbered from 1 as proc(5) numbers them.
  const ppid = Number(fields[1]);
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ppid) && Number.isFinite(ticks) ? { ppid, ticks } : undefined;
}

/** A readable name: a Node process by the script it runs, anything else by its executable. */
function label(pid: number): string {
  const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  const exe = basename(argv[0] ?? "?");
  if (exe === "setpriv") return basename(argv.find((a, i) => i > 0 && !a.startsWith("-") && a !== "KILL") ?? exe);
  if (exe === "node") return basename(argv.find((a, i) => i > 0 && /\.(ts|js|mjs)$/.test(a)) ?? "node");
  return exe;
}

/** CPU milliseconds used so far by each live descendant of `root`, keyed by pid. */
export function descendantCpu(root = process.pid): Map<number, { label: string; ms: number }> {
  const out = new Map<number, { label: string; ms: number }>();
  if (!hasProc) return out;
  const stats = new Map<number, ProcStat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = parseStat(readFileSync(`/proc/${name}/stat`, "utf8"));
      if (stat) stats.set(Number(name), stat);
    } catch {
      // The process ended while the list was read.
    }
  }
  const isDescendant = (pid: number): boolean => {
    for (let p = stats.get(pid)?.ppid, hops = 0; p !== undefined && hops < 64; p = stats.get(p)?.ppid, hops++) if (p === root) return true;
    return false;
  };
  for (const [pid, stat] of stats) {
    if (!isDescendant(pid)) continue;
    try {
      out.set(pid, { label: label(pid), ms: (stat.ticks * 1000) / clockTicks() });
    } catch {
      // Gone since.
    }
  }
  return out;
}

/** CPU microseconds per request between two readings, by process label (processes that ended are left out). */
export function cpuPerRequest(
  before: Map<number, { label: string; ms: number }>,
  after: Map<number, { label: string; ms: number }>,
  requests: number,
): { total: number; byProcess: Record<string, number> } | undefined {
  if (!hasProc || requests === 0) return undefined;
  const byProcess: Record<string, number> = {};
  for (const [pid, { label: name, ms }] of after) {
    const used = ms - (before.get(pid)?.ms ?? 0);
    byProcess[name] = (byProcess[name] ?? 0) + (used * 1000) / requests;
  }
  const total = Object.values(byProcess).reduce((a, b) => a + b, 0);
  return { total, byProcess };
}
