/**
 * The Redis read endpoint the bench loads, written once and served two ways: `GET /` reads one key and
 * answers its value as JSON (404 when the key is missing, so a run against an unseeded Redis fails its
 * preflight instead of measuring error pages). Only `get(c, key)` differs between the two: inside workerd
 * (worker.ts) @upstash/redis through the project's Redis proxy, on Node (node.ts) ioredis straight to Redis.
 * Everything else (the app factory's middleware, the route, the response) is this code.
 */
import type { Context } from "hono";
import { createApp } from "../../../sdk/app.ts";
import { ApiError } from "../../../sdk/errors.ts";

/** The key the bench seeds before each setup and the endpoint reads. */
export const GREETING_KEY = "bench:greeting";
export const GREETING_VALUE = "Hello from Redis";

export interface GreetingAppOptions {
  /** Reads `key` for this request: the string value, or null when the key does not exist. */
  get: (c: Context, key: string) => Promise<string | null>;
}

/** The app: the project's app factory plus `GET /`. */
export function greetingApp({ get }: GreetingAppOptions) {
  const app = createApp();
  app.get("/", async (c) => {
    const value = await get(c, GREETING_KEY);
    if (value === null) throw new ApiError(404, `No value at ${GREETING_KEY}`);
    return c.json({ key: GREETING_KEY, value });
  });
  return app;
}
