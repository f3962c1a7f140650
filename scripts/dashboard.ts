/** npm run dashboard: prints the running workyard's dashboard address (loopback), with the token that signs a browser in. */
import { readObserveInfo } from "../lib/node/observe/run-info.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

cliArgs(
  { options: {} },
  "usage: npm run dashboard\n  Prints the dashboard address of the running workyard, with the token that signs a browser in.",
);

await runCommand(async () => {
  const info = await readObserveInfo(projectPaths(process.env.WORKYARD_ROOT));
  console.log(`${info.internalUrl}/dashboard?token=${encodeURIComponent(info.internalToken)}`);
  console.log("(loopback only: from another machine, tunnel the port, e.g. ssh -L <port>:127.0.0.1:<port> server)");
});
