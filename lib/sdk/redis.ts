/**
 * Redis for functions, through `@upstash/redis`. Bindings are the names Upstash itself uses,
 * UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (secrets from the environment): `npm start` points them
 * at the project's proxy; on Cloudflare the same code talks to Upstash over HTTP. One client per env, failing fast:
 * callers decide what a Redis outage means (the cache bypasses, the rate limit follows its fail mode).
 *
 * Under `npm start` with a real Redis (REDIS_URL), a function that declares those secrets also gets the Redis object
 * (lib/workers/redis/object.ts): the client's commands, pipelines and transactions then go by JS RPC to the one RESP
 * connection its workerd process keeps, instead of an HTTP request to the proxy each. The client is the same
 * `@upstash/redis` with another transport (its `Requester`), and the object answers what the proxy would, so code
 * sees the same results and errors. Subscriptions still go to the proxy.
 */
import type { Context } from "hono";
import { errors, Redis } from "@upstash/redis/cloudflare";
import type { Requester, UpstashRequest, UpstashResponse } from "@upstash/redis/cloudflare";
import { REDIS_OBJECT_BINDING, REDIS_OBJECT_NAME, REDIS_OBJECT_SWITCH } from "../shared/redis-object.ts";
import type { BatchAnswer, CommandAnswer, RedisObjectMethods } from "../shared/redis-object.ts";
import { perEnv } from "./env.ts";

export const REDIS_URL_BINDING = "UPSTASH_REDIS_REST_URL";
export const REDIS_TOKEN_BINDING = "UPSTASH_REDIS_REST_TOKEN";

interface ClientOptions {
  timeoutMs?: number;
}

/**
 * The part of a Durable Object namespace binding used here, declared here rather than taken from
 * @cloudflare/workers-types: Node's type check (the bench, tests) reads this module too.
 */
interface ObjectNamespace {
  idFromName(name: string): object;
  get(id: object): unknown;
}

/** The object's id in this process, made once per namespace (ids are plain values; stubs are made per call). */
const objectIds = new WeakMap<ObjectNamespace, object>();

/**
 * The Redis object's stub. Made for each command: a stub kept from an earlier request fails in later ones (as the
 * gateway found for the host object, lib/workers/gateway.ts).
 */
function objectStub(namespace: ObjectNamespace): RedisObjectMethods {
  let id = objectIds.get(namespace);
  if (!id) objectIds.set(namespace, (id = namespace.idFromName(REDIS_OBJECT_NAME)));
  return namespace.get(id) as unknown as RedisObjectMethods;
}

/** Rejects with the signal's reason (a TimeoutError for AbortSignal.timeout) once it aborts. */
function bounded<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err as Error);
      },
    );
  });
}

/**
 * A `Requester` that sends what @upstash/redis would POST to /, /pipeline and /multi-exec to the Redis object, and
 * turns its answer into what the HTTP requester returns for the proxy's: the result (or one outcome per command), or
 * an UpstashError with the proxy's message for any answer but 200. Anything else (subscriptions) goes over HTTP.
 */
class ObjectRequester implements Requester {
  readYourWrites = true;
  // One Redis behind the object: read-your-writes holds without a token (the proxy's is opaque too).
  upstashSyncToken = "";
  readonly #namespace: ObjectNamespace;
  readonly #http: Requester;
  readonly #timeoutMs: number | undefined;

  constructor(namespace: ObjectNamespace, http: Requester, timeoutMs: number | undefined) {
    this.#namespace = namespace;
    this.#http = http;
    this.#timeoutMs = timeoutMs;
  }

  async request<TResult = unknown>(req: UpstashRequest): Promise<UpstashResponse<TResult>> {
    const path = req.path ?? [];
    const route = path.length === 0 ? "command" : path.length === 1 && !req.isStreaming ? ROUTES[path[0] ?? ""] : undefined;
    const stub = route === undefined ? undefined : objectStub(this.#namespace);
    // A stub that offers no such method (JS RPC needs a compatibility date from 2024-04-03 on): HTTP, as before.
    if (route === undefined || typeof stub?.[route] !== "function") return this.#http.request<TResult>(req);
    const call: Promise<CommandAnswer | BatchAnswer> = route === "command" ? stub.command(req.body) : stub[route](req.body);
    const signal = req.signal ?? (this.#timeoutMs === undefined ? undefined : AbortSignal.timeout(this.#timeoutMs));
    let answer: CommandAnswer | BatchAnswer;
    try {
      answer = await bounded(call, signal);
    } catch (err) {
      if (signal?.aborted && err === signal.reason) throw err; // the caller's deadline, as on the HTTP path
      // The call itself failed (the object was reset, RPC's size limit): an UpstashError, as any failed command is.
      throw new errors.UpstashError(
        `ERR the Redis object could not answer: ${(err as Error).message}, command was: ${JSON.stringify(req.body)}`,
      );
    }
    if ("error" in answer) throw new errors.UpstashError(`${answer.error}, command was: ${JSON.stringify(req.body)}`);
    return ("results" in answer ? answer.results : { result: answer.result }) as UpstashResponse<TResult>;
  }
}

const ROUTES: Record<string, "pipeline" | "multiExec" | undefined> = { pipeline: "pipeline", "multi-exec": "multiExec" };

/** The Upstash client, with its commands sent to the Redis object instead of over HTTP. */
class ObjectRedis extends Redis {
  constructor(config: ConstructorParameters<typeof Redis>[0], namespace: ObjectNamespace, timeoutMs: number | undefined) {
    super(config);
    this.client = new ObjectRequester(namespace, this.client, timeoutMs);
  }
}

/** The Redis object's namespace when this function may use it (workerd, a real Redis), else undefined. */
function redisObject(bindings: Record<string, unknown>): ObjectNamespace | undefined {
  const namespace = bindings[REDIS_OBJECT_BINDING];
  if (bindings[REDIS_OBJECT_SWITCH] !== "on" || typeof namespace !== "object" || namespace === null) return undefined;
  return typeof (namespace as Partial<ObjectNamespace>).idFromName === "function" ? (namespace as ObjectNamespace) : undefined;
}

/** A client from the bindings, or null when the function has no Redis configured. */
export function redisFromEnv(env: unknown, options: ClientOptions = {}): Redis | null {
  const bindings = (env ?? {}) as Record<string, unknown>;
  const url = bindings[REDIS_URL_BINDING];
  const token = bindings[REDIS_TOKEN_BINDING];
  if (typeof url !== "string" || !url || typeof token !== "string" || !token) return null;
  const config = {
    url,
    token,
    // One try: a Redis outage should cost a request milliseconds, not the client's five retries with backoff.
    retry: false as const,
    enableTelemetry: false,
    // Per request anyway; batching across requests would share I/O between them, which workerd forbids.
    enableAutoPipelining: false,
    // A caller that would rather go on without Redis than wait for it (the outbound breaker) bounds each command.
    ...(options.timeoutMs === undefined ? {} : { signal: () => AbortSignal.timeout(options.timeoutMs as number) }),
  };
  const namespace = redisObject(bindings);
  return namespace ? new ObjectRedis(config, namespace, options.timeoutMs) : new Redis(config);
}

/**
 * One client per env object (per worker), made on first use: the client keeps no connection of its own (each
 * command is a `fetch`, or an RPC to the Redis object, in the calling request), so it is safe to share, and making
 * one per request cost more than the command itself in a small read.
 */
const clientOf = perEnv((env) => redisFromEnv(env));

/** The Redis client for this function (made on first use), or null when none is configured. */
export function redis(c: Context): Redis | null {
  return clientOf(c.env);
}
