/**
 * npm run redis-proxy: the Upstash-compatible Redis proxy on its own (the workyard-redis-proxy unit), in front of
 * REDIS_URL (or the in-memory backend), listening at REDIS_PROXY_URL with REDIS_PROXY_TOKEN. `npm start` with the
 * same REDIS_PROXY_URL and token uses it instead of starting its own. Ctrl-C or SIGTERM stops it.
 */
import { startRedisService } from "../lib/node/redis/service.ts";
import { projectWithEnv, stopOnSignals } from "../lib/node/cli/serve.ts";
import { proxySettingsFromEnv } from "../lib/node/runtime/standalone-services.ts";
import { cliArgs } from "../lib/node/cli/args.ts";

cliArgs(
  { options: {} },
  "usage: npm run redis-proxy\n  The Upstash-compatible Redis proxy on its own, in front of REDIS_URL, at REDIS_PROXY_URL with REDIS_PROXY_TOKEN.",
);

projectWithEnv();
const log = (line: string) => console.log(line);
try {
  const s = proxySettingsFromEnv(process.env);
  const service = await startRedisService({ redisUrl: s.redisUrl, host: s.host, port: s.port, token: s.token, log });
  log(`Redis proxy serving ${service.backend.proxyUrl} in front of ${service.backend.label}`);
  stopOnSignals(() => service.stop(), log);
} catch (err) {
  console.error(`Could not start the Redis proxy: ${(err as Error).message}`);
  process.exit(1);
}
