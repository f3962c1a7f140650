/**
 * Whether a Node.js release line still gets security fixes, from Node's own release schedule as the
 * `node-releases` package ships it (the data browserslist uses, updated with every Node release).
 */
import { createRequire } from "node:module";
import { z } from "zod";

const scheduleSchema = z.record(
  z.string(),
  z.object({
    start: z.string().optional(),
    lts: z.string().optional(),
    maintenance: z.string().optional(),
    end: z.string(),
    codename: z.string().optional(),
  }),
);
export type Schedule = z.infer<typeof scheduleSchema>;

/** Node's release schedule ("v24" → start, lts, maintenance and end dates). */
export function nodeSchedule(): Schedule {
  return scheduleSchema.parse(createRequire(import.meta.url)("node-releases/data/release-schedule/release-schedule.json"));
}

export type SupportStatus = "active-lts" | "maintenance-lts" | "current" | "end-of-life" | "unknown";

export interface NodeSupport {
  /** "v24" */
  line: string;
  status: SupportStatus;
  /** The LTS codename, when the line has one ("Krypton"). */
  codename?: string;
  /** When the status ends: the end of active LTS, of maintenance, or of support. */
  until?: string;
  /** The last day of security fixes. */
  end?: string;
}

/** The support status of Node `version` ("v24.22.3" or "24.22.3") on `today` (YYYY-MM-DD). */
export function nodeSupport(version: string, today: string, schedule: Schedule = nodeSchedule()): NodeSupport {
  const line = `v${version.replace(/^v/, "").split(".")[0] ?? ""}`;
  const entry = schedule[line];
  if (!entry) return { line, status: "unknown" };
  const codename = entry.codename || undefined;
  const base = { line, ...(codename ? { codename } : {}), end: entry.end };
  if (today > entry.end) return { ...base, status: "end-of-life", until: entry.end };
  if (entry.maintenance && today >= entry.maintenance) return { ...base, status: "maintenance-lts", until: entry.end };
  if (entry.lts && today >= entry.lts) return { ...base, status: "active-lts", until: entry.maintenance ?? entry.end };
  return { ...base, status: "current", until: entry.lts ?? entry.end };
}

/** "maintenance LTS (Krypton), security fixes until 2028-04-30" */
export function describeSupport(s: NodeSupport): string {
  const name = s.codename ? ` (${s.codename})` : "";
  switch (s.status) {
    case "active-lts":
      return `active LTS${name} until ${s.until}, security fixes until ${s.end}`;
    case "maintenance-lts":
      return `maintenance LTS${name}, security fixes until ${s.end}`;
    case "current":
      return `a Current release, not LTS${s.until ? ` (LTS from ${s.until})` : ""}`;
    case "end-of-life":
      return `end of life since ${s.end}: no security fixes`;
    case "unknown":
      return "not in Node's release schedule";
  }
}
