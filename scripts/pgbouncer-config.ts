/**
 * npm run pgbouncer-config -- <dir>: writes pgbouncer.ini and userlist.txt for a PgBouncer of its own (the
 * workyard-pgbouncer unit runs this before PgBouncer starts), from DATABASE_URL and PGBOUNCER_URL, so the
 * database password lives only in the environment file.
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { pgbouncerSettingsFromEnv, writePgbouncerConfig } from "../lib/node/runtime/standalone-services.ts";

projectWithEnv();
const usage = "usage: npm run pgbouncer-config -- <dir>   (writes <dir>/pgbouncer.ini and <dir>/userlist.txt)";
const { positionals } = cliArgs({ allowPositionals: true, strict: true }, usage);
const [dir] = positionals;
if (!dir || positionals.length !== 1) {
  console.error(usage);
  process.exit(2);
}
await runCommand(async () => {
  const ini = await writePgbouncerConfig(pgbouncerSettingsFromEnv(process.env, dir));
  console.log(`wrote ${ini}`);
}, "Could not write the PgBouncer config: ");
