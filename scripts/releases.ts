/** npm run releases: the kept releases, newest first: id, git commit, build time, which is live. */
import { releasesTable } from "../lib/node/releases/commands.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

cliArgs(
  { options: {} },
  "usage: npm run releases\n  The kept releases, newest first: id, git commit, build time, functions, workerd, which is live.",
);

await runCommand(async () => {
  console.log(await releasesTable(projectWithEnv()));
});
