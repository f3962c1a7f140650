/**
 * npm run dev: serve every function on miniflare at http://127.0.0.1:8787/<name> (PORT and HOST change
 * that), through the production gateway, reloading what a save changes. Secrets come from the environment
 * and a git-ignored .dev.vars file (the environment wins). DATABASE_URL is used as given (no PgBouncer),
 * else the embedded PGlite; REDIS_URL sits behind the Redis proxy (on REDIS_PROXY_PORT, as for npm start),
 * else the in-memory backend; REDIS_PROXY_URL + REDIS_PROXY_TOKEN use a running proxy instead. DEV_PORT
 * sets the loopback port of the dev endpoints (default: a free one). Ctrl-C or SIGTERM stops.
 */
import { devBanner } from "../lib/node/dev/banner.ts";
import { startDevServer } from "../lib/node/dev/server.ts";
import { withoutAddedSignalListeners } from "../lib/node/dev/signals.ts";
import { serveCommand, stopOnSignals } from "../lib/node/cli/serve.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

cliArgs(
  { options: {} },
  [
    "usage: npm run dev",
    "  Serves every function on miniflare, reloading what a save changes. Ctrl-C stops.",
    "  Env, as for npm start: PORT (8787), HOST (127.0.0.1), DATABASE_URL, REDIS_URL, REDIS_PROXY_PORT (a free one),",
    "  REDIS_PROXY_URL + REDIS_PROXY_TOKEN (a running proxy); dev only: DEV_PORT (the loopback dev endpoints, a free",
    "  one). npm start's PGBOUNCER_*, INTERNAL_PORT, HTTPS_PORT and TLS_* do not apply (no PgBouncer, internal",
    "  worker or TLS in dev). Secrets from the environment or .dev.vars.",
  ].join("\n"),
);

const { paths, settings, log } = await serveCommand();
try {
  const started = performance.now();
  const dev = await withoutAddedSignalListeners(() =>
    startDevServer({ paths, host: settings.HOST, port: settings.PORT, devPort: settings.DEV_PORT, env: process.env, log }),
  );
  for (const line of devBanner(dev, { readyMs: performance.now() - started, root: paths.root })) log(line);

  stopOnSignals(() => dev.stop(), log);
} catch (err) {
  console.error(`\nCould not start: ${(err as Error).message}`);
  process.exit(1);
}
