/**
 * npm run internal -- <path>: asks the running workyard's internal socket (loopback, token per start) and prints the
 * answer, so /metrics, /readyz, /errors, /usage can be read without copying a token. Without a path it prints the
 * address and the token as a curl command. Exits 1 when the answer is not 2xx.
 */
import { readObserveInfo } from "../lib/node/observe/run-info.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { cliArgs } from "../lib/node/cli/args.ts";
import { UserError } from "../lib/node/common/user-error.ts";

const usage = `usage: npm run internal [-- <path>]
  Asks the running workyard's internal socket (loopback only) with its token and prints the answer:
    npm run internal -- /metrics        Prometheus metrics
    npm run internal -- /readyz         each dependency, reached from inside workerd
    npm run internal -- /healthz        workerd is up
    npm run internal -- "/errors?function=links"   grouped errors, latest first
    npm run internal -- "/usage?by=day&days=30"     requests per function per day
  Without a path: prints the address and a curl command with the token. Exits 1 unless the answer is 2xx.`;
const { positionals } = cliArgs({ allowPositionals: true, options: {} }, usage);
const [path, ...extra] = positionals;
if (extra.length > 0 || (path !== undefined && !path.startsWith("/"))) {
  console.error(`Name one path, starting with /\n${usage}`);
  process.exit(2);
}

await runCommand(async () => {
  const info = await readObserveInfo(projectPaths(process.env.WORKYARD_ROOT));
  if (path === undefined) {
    console.log(`internal socket: ${info.internalUrl}  (this start's token; both change at every start)`);
    console.log(`curl -H "authorization: Bearer ${info.internalToken}" ${info.internalUrl}/metrics`);
    return 0;
  }
  const res = await fetch(new URL(path, info.internalUrl), { headers: { authorization: `Bearer ${info.internalToken}` } }).catch(
    (err: unknown) => {
      throw new UserError(
        `The internal socket at ${info.internalUrl} did not answer (${(err as Error).message}): is npm start still starting?`,
      );
    },
  );
  process.stdout.write(await res.text());
  return res.ok ? 0 : 1;
});
