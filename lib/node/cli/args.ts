/**
 * Command-line arguments for the project's scripts: node's parseArgs, but an unknown option or a missing value
 * prints what was wrong and the script's usage line and exits 2, instead of an uncaught error with a stack; `--help`
 * or `-h` (before a `--`) prints the usage and exits 0 without doing anything. Every script calls it, so a script that
 * takes no arguments refuses them rather than ignoring them (`npm run deploy -- --help` must not deploy).
 */
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";

export function cliArgs<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  const args = config.args ?? process.argv.slice(2);
  const end = args.indexOf("--");
  if ((end === -1 ? args : args.slice(0, end)).some((a) => a === "--help" || a === "-h")) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
}
