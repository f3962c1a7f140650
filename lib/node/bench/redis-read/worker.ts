/**
 * The Redis read endpoint as a workyard function: `redis(c)` from lib/sdk/redis.ts, the @upstash/redis client
 * talking HTTP to the project's Redis proxy, or (with the switch and REDIS_URL set, as npm start sets them) JS RPC to
 * the Redis object (lib/workers/redis/). The bench's project serves it as
 * functions/redis-read (an index.ts that re-exports this module), with the Upstash bindings declared as
 * secrets (wrangler.toml next to this file).
 */
import { ApiError } from "../../../sdk/errors.ts";
import { redis } from "../../../sdk/redis.ts";
import { greetingApp } from "./route.ts";

export default greetingApp({
  get(c, key) {
    const client = redis(c);
    if (!client) throw new ApiError(503, "Redis is not configured: UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN are not set");
    return client.get<string>(key);
  },
});
