/**
 * Command-line arguments for the project's scripts: node's parseArgs, but an unknown option or a missing value
 * prints what was wrong and the script's usage line and exits 2, instead of an uncaught error with a stack.
 */
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";

export function cliArgs<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
}
