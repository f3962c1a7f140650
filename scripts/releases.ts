/** npm run releases: the kept releases, newest first: id, git commit, build time, which is live. */
import { releasesTable } from "../lib/node/releases/commands.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";

await runCommand(async () => {
  console.log(await releasesTable(projectWithEnv()));
});
