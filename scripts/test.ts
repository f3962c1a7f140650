/** npm test: the test tiers side by side (tests/run/both.ts); `npm test -- --help` says how. */
import { runTests } from "../tests/run/both.ts";

process.exitCode = await runTests(process.argv.slice(2));
