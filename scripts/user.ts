/**
 * npm run user -- role <email> <user|admin>: give an account a role (admins may delete any link, for example).
 * Takes effect at the account's next login or token refresh. Uses DATABASE_URL, or the embedded database.
 */
import { parseArgs } from "node:util";
import { AccountError, ROLES, setRole } from "../lib/node/accounts.ts";
import type { Role } from "../lib/node/accounts.ts";
import { withProjectDatabase } from "../lib/node/embedded-postgres.ts";
import { projectWithEnv } from "../lib/node/serve-cli.ts";

const paths = projectWithEnv();
const { positionals } = parseArgs({ allowPositionals: true });
const [command, email, role] = positionals;
if (command !== "role" || !email || !ROLES.includes(role as Role)) {
  console.error("usage: npm run user -- role <email> <user|admin>");
  process.exit(2);
}

try {
  await withProjectDatabase(process.env, paths.embeddedDb, (sql) => setRole(sql, email, role as Role));
  console.log(`${email} is now ${role}`);
} catch (err) {
  console.error(err instanceof AccountError ? err.message : err);
  process.exitCode = 1;
}
