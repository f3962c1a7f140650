/**
 * npm start: serve every function at http://127.0.0.1:8787/<name> (PORT and HOST change that).
 * Reads a git-ignored .env file if there is one. Uses DATABASE_URL when set, else the embedded PGlite.
 * Ctrl-C or SIGTERM stops everything.
 */
import { unsetEnvWarnings } from "../lib/node/build/env-reads.ts";
import { queueWarnings } from "../lib/node/queues/config.ts";
import { redactUrl } from "../lib/node/common/redact.ts";
import { serveCommand, stopOnSignals } from "../lib/node/cli/serve.ts";
import { startSupervisor } from "../lib/node/runtime/supervisor.ts";
import { servingToolchain } from "../lib/node/ops/toolchain/versions.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

const { values } = cliArgs(
  { options: { sources: { type: "boolean", default: false } } },
  "usage: npm start [-- --sources]\n  Serves every function at http://HOST:PORT/<name> (default 127.0.0.1:8787). Settings come from the environment\n" +
    "  and .env: docs/deploys.md lists them. Ctrl-C or SIGTERM stops.\n" +
    "  Once npm run deploy has run, npm start serves the deployed release (a restart never ships unreviewed sources);\n" +
    "  --sources (or WORKYARD_SERVE=sources) builds and serves the sources instead.",
);

const { paths, settings, log } = await serveCommand();
try {
  const starting = startSupervisor({
    paths,
    host: settings.HOST,
    port: settings.PORT,
    env: process.env,
    serve: values.sources ? "sources" : undefined,
    log,
    onFatal: (err) => {
      console.error(err.message);
      process.exit(1);
    },
  });
  // From the start, not once serving: a Ctrl-C while starting waits for what was started and stops it all
  // (a second one exits at once; workerd processes are killed on exit either way).
  stopOnSignals(async () => (await starting.catch(() => undefined))?.stop(), log);
  const sup = await starting;
  // performance.now() counts from this process's start: the banner's time includes Node's own start-up and the build.
  const db = sup.backends.database;
  log("");
  log(`workyard is serving ${sup.url}  (ready in ${(performance.now() / 1000).toFixed(1)} s)`);
  if (sup.tls) log(`  (${sup.httpUrl} redirects to HTTPS)`);
  log(
    `  release ${sup.release.manifest.id} on ${sup.processes} workerd process${sup.processes === 1 ? "" : "es"} (WORKERD_PROCESSES; default one per core)`,
  );
  log(`  ${servingToolchain(paths.root, sup.release.manifest)}`);
  for (const fn of sup.release.manifest.functions) {
    const missing = sup.missingSecrets.get(fn.name);
    log(`  ${sup.url}${fn.route}${missing ? `   (missing secrets: ${missing.join(", ")}; set them in the environment or .env)` : ""}`);
  }
  for (const line of [...unsetEnvWarnings(sup.release.manifest.functions), ...queueWarnings(sup.release.manifest.functions)]) log(line);
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
  // What /readyz says from inside workerd: the functions' own path to each dependency.
  const ready = await fetch(`${sup.internalUrl}/readyz`, { headers: { authorization: `Bearer ${sup.internalToken}` } })
    .then((r) => r.json() as Promise<{ ok: boolean; checks: Record<string, { ok: boolean; ms: number; error?: string }> }>)
    .catch((err: unknown) => ({ ok: false, checks: { readyz: { ok: false, ms: 0, error: (err as Error).message } } }));
  log(
    `readiness: ${Object.entries(ready.checks)
      .map(([name, c]) => `${name} ${c.ok ? "ok" : `FAILING (${c.error ?? "?"})`} ${c.ms} ms`)
      .join(", ")}`,
  );
  log("observability:");
  log(`  npm run logs [-- <function>]   the request log, live; npm run dashboard   the dashboard's address`);
  log(`  npm run internal -- /metrics    the internal socket (${sup.internalUrl}: /metrics, /readyz, /errors, /usage) with its token`);
  log("Ctrl-C stops.");
} catch (err) {
  console.error(`\nCould not start: ${(err as Error).message}`);
  process.exit(1);
}
