/**
 * How every command ends: `main`'s answer is the exit code (0 when it answers nothing); a throw prints
 * describeFailure (an operator's mistake as its message alone, anything else with its stack) to stderr, after
 * `prefix` when given ("deploy failed: "), and exits 1. Commands keep their own exits for usage (2).
 */
import { describeFailure } from "../common/user-error.ts";

export async function runCommand(main: () => Promise<number | undefined> | Promise<void>, prefix = ""): Promise<void> {
  try {
    process.exitCode = (await main()) ?? 0;
  } catch (err) {
    console.error(`${prefix}${describeFailure(err)}`);
    process.exitCode = 1;
  }
}
