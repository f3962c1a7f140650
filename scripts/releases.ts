/** npm run releases: the kept releases, newest first: id, git commit, build time, which is live. */
import { releasesTable } from "../lib/node/releases/commands.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";

try {
  console.log(await releasesTable(projectWithEnv()));
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
}
