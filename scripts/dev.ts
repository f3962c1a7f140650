/**
 * npm run dev: serve every function on miniflare at http://127.0.0.1:8787/<name> (PORT and HOST change
 * that), through the production gateway, reloading what a save changes. Secrets come from the environment
 * and a git-ignored .dev.vars file (the environment wins). DATABASE_URL is used as given (no PgBouncer),
 * else the embedded PGlite; REDIS_URL sits behind the Redis proxy, else the in-memory backend. DEV_PORT
 * sets the loopback port of the dev endpoints (default: a free one). Ctrl-C or SIGTERM stops.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { devBanner } from "../lib/node/dev/banner.ts";
import { startDevServer } from "../lib/node/dev/server.ts";
import { withoutAddedSignalListeners } from "../lib/node/dev/signals.ts";
import { projectPaths } from "../lib/node/paths.ts";

const paths = projectPaths(process.env.WORKYARD_ROOT);
if (existsSync(join(paths.root, ".env"))) process.loadEnvFile(join(paths.root, ".env"));

const port = z.coerce.number().int().min(0).max(65535);
const settings = z
  .object({ PORT: port.default(8787), HOST: z.string().default("127.0.0.1"), DEV_PORT: port.default(0) })
  .safeParse(process.env);
if (!settings.success) {
  console.error(`Bad settings: ${settings.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  process.exit(2);
}

const log = (line: string) => console.log(line);
try {
  const started = performance.now();
  const dev = await withoutAddedSignalListeners(() =>
    startDevServer({ paths, host: settings.data.HOST, port: settings.data.PORT, devPort: settings.data.DEV_PORT, env: process.env, log }),
  );
  for (const line of devBanner(dev, { readyMs: performance.now() - started, root: paths.root })) log(line);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1); // a second Ctrl-C: do not wait
    stopping = true;
    log(`\n${signal}: stopping...`);
    dev.stop().then(
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
