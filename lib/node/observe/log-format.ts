/** How `npm run logs` prints a log line for people (`--json` prints the JSON lines as they are). */
import type { LogLine } from "./records.ts";

const time = (iso: string) => iso.slice(11, 23);

export function formatLine(line: LogLine): string {
  const level = line.level.toUpperCase().padEnd(5);
  switch (line.type) {
    case "request":
      return `${time(line.time)} ${level} ${(line.function ?? "-").padEnd(12)} ${line.status} ${line.method} ${line.path} ${line.durationMs} ms  ${line.clientIp}  [${line.requestId}]`;
    case "log":
      return `${time(line.time)} ${level} ${line.function.padEnd(12)} ${line.message}${line.requestId ? `  [${line.requestId}]` : line.cron ? `  [cron ${line.cron}]` : ""}`;
    case "scheduled":
      return `${time(line.time)} ${level} ${line.function.padEnd(12)} cron "${line.cron}" ${line.outcome}`;
  }
}
