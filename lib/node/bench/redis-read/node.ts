/**
 * The Redis read endpoint on Node, the bench's baseline: the same app as the function (route.ts) with ONE
 * persistent ioredis client for the process, straight to Redis (no proxy). Served by ../node-server.ts,
 * which hands app.fetch the env it was given; the client is made from env.REDIS_URL on the first request
 * and lives until the process exits.
 */
import { Redis } from "ioredis";
import { greetingApp } from "./route.ts";

let client: Redis | undefined;

function connect(env: unknown): Redis {
  const url = (env as Record<string, unknown> | undefined)?.REDIS_URL;
  if (typeof url !== "string" || url === "") throw new Error("REDIS_URL is not in the env handed to app.fetch");
  const redis = new Redis(url, { connectionName: "workyard-bench-node" });
  redis.on("error", (err: Error) => console.error(`redis: ${err.message}`));
  return redis;
}

export default greetingApp({ get: (c, key) => (client ??= connect(c.env)).get(key) });
