/**
 * npm run user -- role <email> <user|admin>: give an account a role (admins may delete any link, for example).
 * Takes effect at the account's next login or token refresh. Uses DATABASE_URL, or the embedded database (through
 * `npm start`'s server for it while that runs).
 */
import { ROLES, setRole } from "../lib/node/data/accounts.ts";
import type { Role } from "../lib/node/data/accounts.ts";
import { cliArgs } from "../lib/node/cli/args.ts";
import { withProjectDatabase } from "../lib/node/data/embedded-postgres.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const usage = "usage: npm run user -- role <email> <user|admin>";
const paths = projectWithEnv();
const { positionals } = cliArgs({ allowPositionals: true }, usage);
const [command, email, role] = positionals;
if (command !== "role" || !email || !ROLES.includes(role as Role)) {
  console.error(usage);
  process.exit(2);
}

await runCommand(async () => {
  await withProjectDatabase(process.env, paths.embeddedDb, (sql) => setRole(sql, email, role as Role));
  console.log(`${email} is now ${role}`);
});
