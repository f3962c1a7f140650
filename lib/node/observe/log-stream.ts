/**
 * Where the request log goes: one JSON line per request and per console.* line of a function. To a file
 * with rotation (default .workyard/logs/requests.log, 10 MB x 5, by rotating-file-stream), to stdout (for
 * the systemd journal: WORKYARD_LOG=stdout), or nowhere (off); always to the followers of the live stream
 * (`npm run logs`), each with its own filter, and into a short in-memory backlog they start from.
 */
import { mkdirSync } from "node:fs";
import { basename, dirname } from "node:path";
import { createStream } from "rotating-file-stream";
import type { RotatingFileStream } from "rotating-file-stream";
import { z } from "zod";
import { atLeast } from "./records.ts";
import type { Level, LogLine } from "./records.ts";

export const logTargetSchema = z.enum(["file", "stdout", "off"], { message: "WORKYARD_LOG must be file, stdout or off" });
export type LogTarget = z.infer<typeof logTargetSchema>;

export interface LogFilter {
  function?: string;
  /** Lowest level shown. */
  level?: Level;
  /** "5xx", "4xx", "500", ...: only request lines with such a status. */
  status?: string;
}

export const filterSchema = z.object({
  function: z.string().min(1).optional(),
  level: z.enum(["debug", "info", "warn", "error"]).optional(),
  status: z
    .string()
    .regex(/^[1-5](xx|\d\d)$/, "status is like 5xx or 404")
    .optional(),
});

/** True when `line` passes `filter`. */
export function matches(line: LogLine, filter: LogFilter): boolean {
  if (filter.function !== undefined && line.function !== filter.function) return false;
  if (filter.level !== undefined && !atLeast(line.level, filter.level)) return false;
  if (filter.status !== undefined) {
    if (line.type !== "request") return false;
    const s = String(line.status);
    return filter.status.endsWith("xx") ? s[0] === filter.status[0] : s === filter.status;
  }
  return true;
}

interface Follower {
  filter: LogFilter;
  write(line: LogLine): void;
}

const BACKLOG = 2000;

export class LogStream {
  private backlog: LogLine[] = [];
  /** Text not yet written: lines of one ingested batch go out in one write (a write per line cost a third of the collector's CPU). */
  private pending = "";
  private readonly followers = new Set<Follower>();
  private readonly file: RotatingFileStream | undefined;

  private readonly target: LogTarget;

  constructor(target: LogTarget, file: string) {
    this.target = target;
    if (target === "file") {
      mkdirSync(dirname(file), { recursive: true });
      this.file = createStream(basename(file), { path: dirname(file), size: "10M", maxFiles: 5 });
      this.file.on("error", (err) => console.error(`request log: ${err.message}`));
    }
  }

  write(line: LogLine): void {
    this.backlog.push(line);
    if (this.backlog.length > 2 * BACKLOG) this.backlog = this.backlog.slice(-BACKLOG);
    if (this.target !== "off") {
      if (this.pending === "") setImmediate(() => this.flush());
      this.pending += `${JSON.stringify(line)}\n`;
    }
    for (const f of this.followers) if (matches(line, f.filter)) f.write(line);
  }

  private flush(): void {
    const text = this.pending;
    this.pending = "";
    if (text === "") return;
    if (this.file) this.file.write(text);
    else process.stdout.write(text);
  }

  /** The last `n` lines that pass `filter`. */
  recent(filter: LogFilter, n: number): LogLine[] {
    const out: LogLine[] = [];
    for (let i = this.backlog.length - 1; i >= 0 && out.length < n; i--) {
      const line = this.backlog[i];
      if (line && matches(line, filter)) out.push(line);
    }
    return out.reverse();
  }

  /** Calls `write` with every later line that passes `filter`, until the returned function is called. */
  follow(filter: LogFilter, write: (line: LogLine) => void): () => void {
    const f = { filter, write };
    this.followers.add(f);
    return () => this.followers.delete(f);
  }

  async stop(): Promise<void> {
    this.followers.clear();
    this.flush();
    const file = this.file;
    if (file) await new Promise<void>((resolve) => file.end(resolve));
  }
}
