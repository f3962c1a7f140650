/**
 * npm run deploy: builds the sources into a new immutable release, then has the running `npm start` apply
 * pending migrations, start the new workerd processes on the same socket, wait until each is ready, and
 * drain and stop the old ones. Any failure leaves the live release serving; exits 1 with the reason.
 */
import { deploy } from "../lib/node/releases/commands.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

cliArgs(
  { options: {} },
  "usage: npm run deploy\n  Builds the sources into a release, migrates, and switches the running npm start to it with no failed request.\n  Any failure leaves the live release serving.",
);

await runCommand(async () => {
  await deploy(projectWithEnv(), (line) => console.log(line));
}, "\ndeploy failed: ");
