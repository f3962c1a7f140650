/**
 * The Redis rows (design targets "Redis read endpoint >= 0.5x the same handler on Node with a direct Redis
 * client" and "the proxy alone beats webdis on the same GET workload"), four setups on one seeded key:
 *   - workerd through the gateway: the function redis-read/worker.ts, @upstash/redis per request, over HTTP
 *     to the project's Redis proxy (startRedisProxy + createBackend, in a process of its own)
 *   - the same function and release, with the Redis object on (lib/workers/redis/): the client's commands go by JS
 *     RPC to the object's RESP connection, as under npm start with REDIS_URL; no proxy runs
 *   - Node (@hono/node-server): the same app (redis-read/route.ts) with one persistent ioredis client, direct
 *   - the proxy alone, loaded as @upstash/redis calls it: `POST /` `["GET","bench:greeting"]`, bearer token
 *   - the proxy alone, loaded with webdis's request shape: `GET /get/bench:greeting` (path style), bearer token
 *   - webdis (Debian package) on the same Redis: `GET /GET/bench:greeting`
 * Redis is REDIS_URL (from the environment or .env), else redis://127.0.0.1:6379 when it answers; without
 * one the rows are skipped and the reason printed. The key is (re)written before each setup, so a Redis
 * flushed by something else meanwhile does not turn a setup into a benchmark of 404s.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { Redis } from "ioredis";
import type { ProjectPaths } from "../common/paths.ts";
import { buildBenchProjectOnce, Teardown } from "./project.ts";
import { redactRedisUrl } from "../redis/proxy/index.ts";
import { startChildServer } from "./child-server.ts";
import type { ChildServer } from "./child-server.ts";
import { GREETING_KEY, GREETING_VALUE } from "./redis-read/route.ts";
import type { Comparison, RunningScenario, Scenario } from "./scenario.ts";
import { serveOnNode, serveWorkerd } from "./servers.ts";
import { findWebdis, startWebdis, WEBDIS_INSTALL_HINT } from "./webdis.ts";
import { redisBenchmarkLoad } from "./limits.ts";
import { findOnPath } from "../common/find-on-path.ts";
import { REDIS_OBJECT_SWITCH, REDIS_OBJECT_URL_VAR } from "../../shared/redis-object.ts";

export const REDIS_GATEWAY = "redis read via gateway (workerd, @upstash/redis, proxy)";
export const REDIS_OBJECT = "redis read via gateway (workerd, @upstash/redis, Redis object)";
export const REDIS_NODE = "redis read on Node (ioredis, direct)";
export const REDIS_PROXY = "redis GET via the proxy (POST /, 1 process)";
export const REDIS_PROXY_PATH = "redis GET via the proxy (GET /get/key, 1 process)";
export const REDIS_WEBDIS = "redis GET via webdis (GET /GET/key, 2 threads)";
export const REDIS_LIMIT = "redis read, the machine's limit: redis-benchmark GET straight to Redis (no HTTP)";

/** The function's name in the bench's project: served at /redis-read. */
const FN = "redis-read";
const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
const fixture = fileURLToPath(new URL("./redis-read/", import.meta.url));
const proxyEntry = fileURLToPath(new URL("./redis-proxy-server.ts", import.meta.url));

export interface RedisBenchOptions {
  paths: ProjectPaths;
  /** Each line workerd, the proxy, webdis and the Node server print. */
  onLine: (source: string, line: string) => void;
  /** The bench's own messages (why rows are skipped, builds). */
  log: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** REDIS_URL from the environment, else from the project's .env (read, not loaded into process.env). */
function configuredRedisUrl(paths: ProjectPaths, env: NodeJS.ProcessEnv): string | undefined {
  if (env.REDIS_URL) return env.REDIS_URL;
  const file = join(paths.root, ".env");
  return existsSync(file) ? parseEnv(readFileSync(file, "utf8")).REDIS_URL || undefined : undefined;
}

/** Runs `work` on a short-lived connection that fails fast instead of retrying. */
async function withRedis<T>(url: string, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The connection's own error (ECONNREFUSED ...) says more than the rejected command's "Connection is closed".
  let connectionError: Error | undefined;
  redis.on("error", (err: Error) => {
    connectionError ??= err;
  });
  try {
    await redis.connect();
    return await work(redis);
  } catch (err) {
    throw connectionError ?? err;
  } finally {
    redis.disconnect();
  }
}

async function seed(url: string): Promise<void> {
  await withRedis(url, (redis) => redis.set(GREETING_KEY, GREETING_VALUE));
}

/** The Redis URL to use, or why there is none. */
async function findRedis(paths: ProjectPaths, env: NodeJS.ProcessEnv): Promise<{ url: string } | { skip: string }> {
  const configured = configuredRedisUrl(paths, env);
  const url = configured ?? DEFAULT_REDIS_URL;
  try {
    const protocol = new URL(url).protocol;
    if (protocol !== "redis:" && protocol !== "rediss:")
      return { skip: `REDIS_URL must start with redis:// or rediss://, not ${protocol}//` };
  } catch {
    return { skip: "REDIS_URL is not a URL (redis://host:port)" };
  }
  try {
    await withRedis(url, (redis) => redis.ping());
    return { url };
  } catch (err) {
    return {
      skip: configured
        ? `Redis at REDIS_URL (${redactRedisUrl(url)}) does not answer: ${message(err)}`
        : `REDIS_URL is not set and no Redis answers at ${DEFAULT_REDIS_URL}: ${message(err)}`,
    };
  }
}

/** The Redis scenarios and their ratio rows; none (with the reason logged) when there is no Redis. */
export async function redisBench({
  paths,
  onLine,
  log,
  env = process.env,
}: RedisBenchOptions): Promise<{ scenarios: Scenario[]; comparisons: Comparison[] }> {
  const comparisons: Comparison[] = [
    { name: "redis read: gateway / Node", a: REDIS_GATEWAY, b: REDIS_NODE, target: 0.5 },
    { name: "redis read: gateway with the Redis object / Node", a: REDIS_OBJECT, b: REDIS_NODE, target: 0.5 },
    { name: "redis read: Redis object / proxy (both via gateway)", a: REDIS_OBJECT, b: REDIS_GATEWAY },
    { name: "redis proxy / webdis", a: REDIS_PROXY, b: REDIS_WEBDIS, target: 1.0 },
    { name: "redis proxy / webdis, both GET /<cmd>/key", a: REDIS_PROXY_PATH, b: REDIS_WEBDIS, target: 1.0 },
    { name: "redis read: gateway / machine's limit", a: REDIS_GATEWAY, b: REDIS_LIMIT },
    { name: "redis read: Node / machine's limit", a: REDIS_NODE, b: REDIS_LIMIT },
  ];
  const found = await findRedis(paths, env);
  if ("skip" in found) {
    log(`redis rows skipped: ${found.skip}`);
    return { scenarios: [], comparisons };
  }
  const redisUrl = found.url;

  const buildOnce = buildBenchProjectOnce(paths, FN, fixture, log);

  /** The project's Redis proxy in a child process, with a fresh token. */
  async function startProxy(label: string): Promise<ChildServer & { url: string; token: string }> {
    const token = randomBytes(24).toString("base64url");
    const child = await startChildServer({
      what: "the Redis proxy",
      file: process.execPath,
      args: [proxyEntry],
      env: { NODE_ENV: "production", REDIS_URL: redisUrl, WORKYARD_BENCH_PROXY_TOKEN: token },
      cwd: paths.root,
      onLine: (l) => onLine(label, l),
    });
    return { ...child, url: `http://127.0.0.1:${child.port}`, token };
  }

  /** A scenario whose start() seeds the key, then starts what `serve` starts; stop() undoes it all. */
  function scenario(name: string, serve: (teardown: Teardown) => Promise<RunningScenario>): Scenario {
    return {
      name,
      async start(): Promise<RunningScenario> {
        const teardown = new Teardown();
        try {
          await seed(redisUrl);
          const running = await serve(teardown);
          teardown.add(() => running.stop());
          // What the server says of itself as it is; stopping also undoes the rest.
          const started: RunningScenario = { ...running, stop: () => teardown.run() };
          return started;
        } catch (err) {
          await teardown.run().catch((cleanupErr: unknown) => log(`  cleaning up after a failed start: ${message(cleanupErr)}`));
          throw err;
        }
      },
    };
  }

  const gateway = scenario(REDIS_GATEWAY, async (teardown) => {
    const built = await buildOnce();
    const fn = built.manifest.functions.find((f) => f.name === FN);
    if (!fn) throw new Error(`the bench's release ${built.manifest.id} has no "${FN}" function`);
    const proxy = await startProxy("redis proxy");
    teardown.add(() => proxy.stop());
    // As the supervisor does: workerd sees the internal token and the secrets the function declares, nothing else.
    const bindings: Record<string, string> = { UPSTASH_REDIS_REST_URL: proxy.url, UPSTASH_REDIS_REST_TOKEN: proxy.token };
    const secrets: Record<string, string> = {};
    for (const secret of fn.secrets) {
      const value = bindings[secret];
      if (value === undefined) throw new Error(`the bench's ${FN} function declares a secret it cannot set: ${secret}`);
      secrets[secret] = value;
    }
    return serveWorkerd({ configDir: built.releaseDir, path: fn.route, env: secrets, onLine: (l) => onLine("workerd redis", l) });
  });

  // As the supervisor does with REDIS_URL (workerd-env.ts): the switch and the URL; the Upstash bindings point where
  // nothing listens, so a command that went over HTTP instead would show as an error.
  const viaObject = scenario(REDIS_OBJECT, async () => {
    const built = await buildOnce();
    const fn = built.manifest.functions.find((f) => f.name === FN);
    if (!fn) throw new Error(`the bench's release ${built.manifest.id} has no "${FN}" function`);
    const env = {
      UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9",
      UPSTASH_REDIS_REST_TOKEN: "unused",
      [REDIS_OBJECT_SWITCH]: "on",
      [REDIS_OBJECT_URL_VAR]: redisUrl,
    };
    return serveWorkerd({ configDir: built.releaseDir, path: fn.route, env, onLine: (l) => onLine("workerd redis object", l) });
  });

  const node = scenario(REDIS_NODE, () =>
    serveOnNode({
      modulePath: join(fixture, "node.ts"),
      vars: { REDIS_URL: redisUrl },
      path: "/",
      cwd: paths.root,
      onLine: (l) => onLine("node redis", l),
    }),
  );

  const limit = scenario(REDIS_LIMIT, () =>
    Promise.resolve({ url: "", load: redisBenchmarkLoad(redisUrl, GREETING_KEY), stop: async () => {} }),
  );

  const proxyAlone = scenario(REDIS_PROXY, async () => {
    const proxy = await startProxy("redis proxy");
    return {
      url: `${proxy.url}/`,
      // What @upstash/redis sends for redis.get(key), less its base64 response encoding (webdis answers plain JSON).
      request: {
        method: "POST",
        headers: { authorization: `Bearer ${proxy.token}`, "content-type": "application/json" },
        body: JSON.stringify(["GET", GREETING_KEY]),
      },
      stop: () => proxy.stop(),
    };
  });

  // The same request webdis gets: a GET with the command in the path, no body to read or parse.
  const proxyPath = scenario(REDIS_PROXY_PATH, async () => {
    const proxy = await startProxy("redis proxy");
    return {
      url: `${proxy.url}/get/${GREETING_KEY}`,
      request: { method: "GET", headers: { authorization: `Bearer ${proxy.token}` } },
      stop: () => proxy.stop(),
    };
  });

  const scenarios = [gateway, viaObject, node, proxyAlone, proxyPath];
  if (findOnPath("redis-benchmark")) scenarios.push(limit);
  else log(`redis row "${REDIS_LIMIT}" skipped: redis-benchmark is not installed (apt-get install -y redis-tools)`);
  const webdisBin = findWebdis(env);
  if (webdisBin) {
    scenarios.push(
      scenario(REDIS_WEBDIS, async () => {
        const webdis = await startWebdis({ bin: webdisBin, redisUrl, onLine: (l) => onLine("webdis", l) });
        return { url: `${webdis.url}/GET/${GREETING_KEY}`, stop: () => webdis.stop() };
      }),
    );
  } else {
    log(`redis row "${REDIS_WEBDIS}" skipped: ${WEBDIS_INSTALL_HINT}`);
  }
  log(`redis rows use ${redactRedisUrl(redisUrl)} (key ${GREETING_KEY}, rewritten before each setup)`);
  return { scenarios, comparisons };
}
