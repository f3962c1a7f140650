/**
 * npm start: serve every function at http://127.0.0.1:8787/<name> (PORT and HOST change that).
 * Reads a git-ignored .env file if there is one. Uses DATABASE_URL when set, else the embedded PGlite.
 * Ctrl-C or SIGTERM stops everything.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { projectPaths } from "../lib/node/paths.ts";
import { redactUrl } from "../lib/node/redact.ts";
import { startSupervisor } from "../lib/node/supervisor.ts";

const paths = projectPaths(process.env.WORKYARD_ROOT);
if (existsSync(join(paths.root, ".env"))) process.loadEnvFile(join(paths.root, ".env"));

const settings = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8787),
    HOST: z.string().default("127.0.0.1"),
  })
  .safeParse(process.env);
if (!settings.success) {
  console.error(`Bad settings: ${settings.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  process.exit(2);
}

const log = (line: string) => console.log(line);
try {
  const started = performance.now();
  const sup = await startSupervisor({
    paths,
    host: settings.data.HOST,
    port: settings.data.PORT,
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

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`\n${signal}: stopping...`);
    sup.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
} catch (err) {
  console.error(`\nCould not start: ${(err as Error).message}`);
  process.exit(1);
}
