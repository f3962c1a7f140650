/**
 * npm run rollback -- [release]: switches the running `npm start` back to the release that was live before
 * (or to the kept release named), without building or migrating: release folders are immutable.
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { rollback } from "../lib/node/releases/commands.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const usage = "usage: npm run rollback -- [release]";
const { positionals } = cliArgs({ allowPositionals: true }, usage);
if (positionals.length > 1) {
  console.error(usage);
  process.exit(2);
}
await runCommand(async () => {
  await rollback(projectWithEnv(), (line) => console.log(line), positionals[0]);
}, "rollback failed: ");
