/** Routes miniflare's and workerd's output through the dev server's log, one line at a time. */
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { Log, LogLevel } from "miniflare";

/** Miniflare's own messages (warnings, source-mapped uncaught errors); its "Ready on" lines are left out. */
export class ForwardLog extends Log {
  constructor(private readonly line: (text: string) => void) {
    super(LogLevel.WARN);
  }

  protected override log(message: string): void {
    for (const text of message.split("\n")) this.line(text);
  }
}

/** For miniflare's `handleRuntimeStdio`: the workers' console output, prefixed like `npm start` does. */
export function runtimeStdio(line: (text: string) => void) {
  return (stdout: Readable, stderr: Readable): void => {
    for (const stream of [stdout, stderr]) createInterface({ input: stream, crlfDelay: Infinity }).on("line", (text) => line(`[workerd] ${text}`));
  };
}
