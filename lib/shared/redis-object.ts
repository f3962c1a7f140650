/**
 * The Redis object (lib/workers/redis/object.ts): a Durable Object in the internal worker that keeps one RESP
 * connection to REDIS_URL per workerd process, which functions reach by JS RPC instead of an HTTP request to the
 * Redis proxy per command (issue #23, lever b1). The names both sides use, and the answers its methods give: the
 * proxy's answer for the same request, as status and body (strings as the proxy answers them without
 * `Upstash-Encoding: base64`, which is what @upstash/redis has after decoding).
 */

/** The function's Durable Object namespace binding to the Redis object (only functions that declare the Upstash secrets). */
export const REDIS_OBJECT_BINDING = "WORKYARD_REDIS";
/**
 * The function's switch, from workerd's environment: "on" when the supervisor serves a real Redis (REDIS_URL) and
 * the object is not turned off; unset (null) otherwise, and the SDK keeps the HTTP path to the proxy.
 */
export const REDIS_OBJECT_SWITCH = "WORKYARD_REDIS_OBJECT";
/** The internal worker's binding (and workerd's environment variable) holding the Redis URL the object connects to. */
export const REDIS_OBJECT_URL_VAR = "WORKYARD_REDIS_URL";
/** Optional: how long one command may wait for its reply before the object closes its connection (ms, default 5000). */
export const REDIS_OBJECT_TIMEOUT_VAR = "WORKYARD_REDIS_TIMEOUT_MS";
/** The Durable Object class the internal worker exports. */
export const REDIS_OBJECT_CLASS = "RedisObject";
/** The object's name: one per workerd process (in-memory namespaces are per process). */
export const REDIS_OBJECT_NAME = "redis";

/** One reply as JSON: what the proxy answers, strings as text. */
export type JsonReply = null | number | string | JsonReply[];

/** A single command's answer: 200 and the result, or the proxy's status (400, 413, 503 ...) and its error message. */
export type CommandAnswer = { status: 200; result: JsonReply } | { status: number; error: string };

/** One command's outcome inside a pipeline or transaction. */
export type Outcome = { result: JsonReply } | { error: string };

/** A pipeline's or transaction's answer: 200 and one outcome per command, or the status and error of the whole. */
export type BatchAnswer = { status: 200; results: Outcome[] } | { status: number; error: string };

/** The object's RPC methods: each takes the body @upstash/redis would POST to /, /pipeline or /multi-exec. */
export interface RedisObjectMethods {
  command(body: unknown): Promise<CommandAnswer>;
  pipeline(body: unknown): Promise<BatchAnswer>;
  multiExec(body: unknown): Promise<BatchAnswer>;
}

/** The secrets @upstash/redis reads; a function that declares one of them gets the Redis object's binding. */
export const UPSTASH_SECRETS = ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"] as const;

/** Whether a function with these secrets uses Redis (and so may reach the Redis object). */
export const declaresRedis = (secrets: readonly string[]) => UPSTASH_SECRETS.some((name) => secrets.includes(name));
