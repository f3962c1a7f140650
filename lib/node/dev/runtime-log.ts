/** Routes miniflare's and workerd's output through the dev server's log, one line at a time. */
import { Log, LogLevel } from "miniflare";
import type { WorkerdStructuredLog } from "miniflare";

/** Miniflare's own messages (warnings, source-mapped uncaught errors); its "Ready on" lines are left out. */
export class ForwardLog extends Log {
  private readonly line: (text: string) => void;

  constructor(line: (text: string) => void) {
    super(LogLevel.WARN);
    this.line = line;
  }

  protected override log(message: string): void {
    for (const text of message.split("\n")) this.line(text);
  }
}

/**
 * For miniflare's `handleStructuredLogs` (miniflare runs workerd with structured logging and parses each line):
 * the workers' console output, one line at a time, prefixed like `npm start` does.
 */
export function runtimeLog(line: (text: string) => void) {
  return ({ message }: WorkerdStructuredLog): void => {
    for (const text of message.split("\n")) line(`[workerd] ${text}`);
  };
}
