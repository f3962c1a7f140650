/**
 * npm run queues [-- list | peek <queue> [--limit N] | redrive <queue> | purge <queue> | pause <queue> | resume <queue>]
 * See lib/node/queues/command.ts.
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { withProjectDatabase } from "../lib/node/data/embedded-postgres.ts";
import { queuesCommand, QUEUES_USAGE } from "../lib/node/queues/command.ts";

const paths = projectWithEnv();
const { positionals, values } = cliArgs({ allowPositionals: true, options: { limit: { type: "string", default: "10" } } }, QUEUES_USAGE);
const limit = Number(values.limit);
if (positionals.length > 2 || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
  console.error(QUEUES_USAGE);
  process.exit(2);
}
await runCommand(async () => {
  const lines = await withProjectDatabase(process.env, paths.embeddedDb, (sql) =>
    queuesCommand(sql, positionals[0], positionals[1], limit),
  );
  for (const line of lines) console.log(line);
});
