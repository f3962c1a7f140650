/**
 * npm run apikey -- create <function> --name <who uses it> [--role user|admin]
 * npm run apikey -- list
 * npm run apikey -- revoke <id>
 * API keys for machine clients of one function, in DATABASE_URL or the embedded database (through `npm start`'s
 * server for it while that runs, so a revoked key is refused at its next request). A new key is printed once; only
 * its hash is stored.
 */
import { createApiKey, listApiKeys, revokeApiKey, ROLES } from "../lib/node/data/accounts.ts";
import type { Role } from "../lib/node/data/accounts.ts";
import { cliArgs } from "../lib/node/cli/args.ts";
import { withProjectDatabase } from "../lib/node/data/embedded-postgres.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const usage = "usage: npm run apikey -- create <function> --name <who> [--role user|admin] | list | revoke <id>";
const paths = projectWithEnv();
const { positionals, values } = cliArgs(
  { allowPositionals: true, options: { name: { type: "string" }, role: { type: "string", default: "user" } } },
  usage,
);
const [command, arg] = positionals;
if (!(command === "list" || ((command === "create" || command === "revoke") && arg)) || !ROLES.includes(values.role as Role)) {
  console.error(usage);
  process.exit(2);
}

await runCommand(() =>
  withProjectDatabase(process.env, paths.embeddedDb, async (sql) => {
    if (command === "create") {
      const { id, key } = await createApiKey(sql, arg ?? "", values.name ?? "", values.role as Role);
      console.log(`API key ${id} for the function "${arg}" (role ${values.role}). Shown once; store it now:\n\n  ${key}\n`);
      console.log(`Use it as: curl -H "X-Api-Key: ${key.slice(0, 20)}..." ...   Revoke: npm run apikey -- revoke ${id}`);
    } else if (command === "revoke") {
      await revokeApiKey(sql, arg ?? "");
      console.log(`revoked ${arg}`);
    } else {
      const keys = await listApiKeys(sql);
      if (keys.length === 0) console.log("no API keys: make one with npm run apikey -- create <function> --name <who>");
      for (const k of keys) {
        console.log(
          `${k.id}  ${k.function.padEnd(12)} ${k.role.padEnd(6)} ${k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : "active".padEnd(32)}  ${k.name}`,
        );
      }
    }
  }),
);
