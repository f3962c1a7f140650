/**
 * npm start: serve every function at http://127.0.0.1:8787/<name> (PORT and HOST change that).
 * Reads a git-ignored .env file if there is one. Uses DATABASE_URL when set, else the embedded PGlite.
 * Ctrl-C or SIGTERM stops everything.
 */
import { redactUrl } from "../lib/node/redact.ts";
import { projectWithEnv, serveSettings, stopOnSignals } from "../lib/node/serve-cli.ts";
import { startSupervisor } from "../lib/node/supervisor.ts";

const paths = projectWithEnv();
const settings = serveSettings();

const log = (line: string) => console.log(line);
try {
  const started = performance.now();
  const sup = await startSupervisor({
    paths,
    host: settings.HOST,
    port: settings.PORT,
    env: process.env,
    log,
    onFatal: (err) => {
      console.error(err.message);
      process.exit(1);
    },
  });
  const db = sup.backends.database;
  log("");
  log(`workyard is serving ${sup.url}  (ready in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  for (const fn of sup.release.manifest.functions) {
    const missing = sup.missingSecrets.get(fn.name);
    log(`  ${sup.url}${fn.route}${missing ? `   (missing secrets: ${missing.join(", ")}; set them in the environment or .env)` : ""}`);
  }
  log("backends:");
  log(
    db.kind === "embedded-pglite"
      ? `  database: embedded PGlite (data in ${db.dataDir}); set DATABASE_URL to use PostgreSQL`
      : `  database: PostgreSQL at ${redactUrl(db.url)}, through PgBouncer (transaction pooling) at ${redactUrl(db.pooler.url)}`,
  );
  const redis = sup.backends.redis;
  log(
    `  redis:    ${redis.label} through the Upstash-compatible proxy at ${redis.proxyUrl}` +
      (redis.kind === "memory" ? "; set REDIS_URL to use Redis" : ""),
  );
  log("Ctrl-C stops.");

  stopOnSignals(() => sup.stop(), log);
} catch (err) {
  console.error(`\nCould not start: ${(err as Error).message}`);
  process.exit(1);
}
