/**
 * The project's Redis proxy (startRedisProxy in front of createBackend({ redisUrl })) as its own process,
 * for the bench: in the bench's process it would share a thread with the load generator. Run as
 * `node redis-proxy-server.ts` with WORKYARD_BENCH_PROXY_TOKEN and REDIS_URL in its environment (REDIS_URL empty: the
 * embedded in-memory backend, as `npm start` uses without one);
 * prints `{"port":N}` once it listens on a free loopback port; SIGTERM or SIGINT stops the proxy and closes
 * the backend.
 */
import { createBackend, startRedisProxy } from "../redis/proxy/index.ts";

const redisUrl = process.env.REDIS_URL;
const token = process.env.WORKYARD_BENCH_PROXY_TOKEN;
if (redisUrl === undefined || !token) {
  console.error("usage: REDIS_URL=redis://...|'' WORKYARD_BENCH_PROXY_TOKEN=... node redis-proxy-server.ts");
  process.exit(2);
}
const backend = createBackend({ redisUrl, log: (line) => console.error(`[redis] ${line}`) });
const proxy = await startRedisProxy({ token, backend, log: (line) => console.error(line) });
console.log(JSON.stringify({ port: proxy.port }));

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 2000).unref();
  void proxy
    .stop()
    .then(() => backend.close())
    .finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
