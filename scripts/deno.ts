/**
 * npm run deno -- <function> [--port N] [--host H]: serves one function on Deno from its own source, with its vars,
 * secrets, database, Redis and queue producers as npm run dev gives them (lib/node/deno/command.ts).
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { ensureLocalSecrets } from "../lib/node/cli/local-secrets.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runOnDeno } from "../lib/node/deno/command.ts";

const usage = `usage: npm run deno -- <function> [--port N] [--host H] [--test-scheduled]
  Serves functions/<function> on Deno (from the npm registry's deno package), from its own source: the same code
  workerd and Cloudflare run. Bindings as for npm run dev: vars from its wrangler.toml, secrets from the environment
  or .dev.vars, DATABASE_URL as given or the embedded PGlite, REDIS_URL behind the Redis proxy or its in-memory
  backend, queue producers through a queue service started here. Crons run through Deno.cron.
  --port N   the port (default 8000; 0 for a free one, printed when it listens)
  --host H   the address (default 127.0.0.1: loopback only)
  --test-scheduled   also answer /__scheduled?cron=<cron> by firing that cron now (as wrangler dev --test-scheduled)
  Ctrl-C or SIGTERM stops: Deno finishes requests in flight and waitUntil work, then closes its pool.`;
const { positionals, values } = cliArgs(
  { allowPositionals: true, options: { port: { type: "string" }, host: { type: "string" }, "test-scheduled": { type: "boolean" } } },
  usage,
);
const [name, ...extra] = positionals;
const port = Number(values.port ?? 8000);
if (!name || extra.length > 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(usage);
  process.exit(2);
}
await runCommand(async () => {
  const paths = projectWithEnv();
  const log = (line: string) => console.log(line);
  // The signing key npm start and npm run dev make for themselves (the same one: tokens work across them).
  await ensureLocalSecrets(paths, process.env, log);
  return runOnDeno({
    paths,
    name,
    host: values.host ?? "127.0.0.1",
    port,
    testScheduled: values["test-scheduled"] ?? false,
    env: process.env,
    log,
  });
});
