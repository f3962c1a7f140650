/**
 * The internal worker: the platform's own surface, on a socket that listens on loopback only and is never
 * routed from the public one. Every request needs `Authorization: Bearer <WORKYARD_INTERNAL_TOKEN>`.
 *   GET  /healthz                                  liveness of workerd itself (no I/O)
 *   GET  /readyz                                   readiness: PostgreSQL through the pooler and Redis through the
 *                                                  proxy (and through the Redis object when it is on),
 *                                                  reached from inside workerd as functions reach them;
 *                                                  each check with its status and latency; 503 when one fails
 *   POST /scheduled/<function>?cron=..&scheduledTime=<ms>   runs the function's real scheduled() handler
 *   POST /queue/<function>                         delivers a batch ({ queue, messages }, bodies in base64) to the
 *                                                  function's real queue() handler; answers workerd's outcome
 *   POST /drain?holdMs=N                           this process is about to be stopped: hold new requests for
 *                                                  N ms (see lib/workers/drain.ts); the supervisor sends it to
 *                                                  one process through that process's own probe socket
 *   GET  /metrics                                  Prometheus text: the supervisor's collector, which every
 *                                                  workerd process's workers report to
 *   GET  /errors                                   recorded errors, grouped by fingerprint (JSON)
 *   GET  /dashboard                                the dashboard page; /dashboard?token=<token> sets a cookie
 *                                                  so a browser can stay signed in (HttpOnly, SameSite=Strict)
 *   GET  /dashboard/data?window=auto|5m|15m|60m    its figures over that window, with this worker's readiness checks
 * Firing scheduled() through a service binding needs the `service_binding_extra_handlers` compatibility flag
 * on this worker, and workerd started with --experimental.
 */
import { pgClient } from "../sdk/db.ts";
import { COLLECTOR_TOKEN_VAR, COLLECTOR_URL_VAR, INTERNAL_PATHS, INTERNAL_TOKEN_VAR } from "../shared/names.ts";
import type { QueueDelivery, QueueOutcome } from "../shared/names.ts";
import { REDIS_OBJECT_BINDING, REDIS_OBJECT_NAME, REDIS_OBJECT_SWITCH } from "../shared/redis-object.ts";
import type { RedisObjectMethods } from "../shared/redis-object.ts";

// Queue bindings point at this entrypoint of the internal worker (serve-config.ts).
export { QueueProducer } from "./queue-producer.ts";
export { TraceSink } from "./trace/sink.ts";
// The Redis object functions reach Redis through when the supervisor serves a real Redis (serve-config.ts).
export { RedisObject } from "./redis/object.ts";

interface ScheduledTarget {
  scheduled(options: { cron?: string; scheduledTime?: Date }): Promise<{ outcome: string; noRetry: boolean }>;
}

/** A message as a service binding's queue() takes it: `body`, or `serializedBody` for the v8 format. */
type ServiceQueueMessage = { id: string; timestamp: Date; attempts: number } & ({ body: unknown } | { serializedBody: ArrayBuffer });

interface QueueTarget {
  queue(queueName: string, messages: ServiceQueueMessage[]): Promise<QueueOutcome>;
}

const utf8 = new TextDecoder();

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A stored message as the consumer's queue() receives it (a JSON body that does not parse throws). */
function toServiceMessage(m: QueueDelivery["messages"][number]): ServiceQueueMessage {
  const bytes = decodeBase64(m.body);
  const base = { id: m.id, timestamp: new Date(m.timestamp), attempts: m.attempts };
  if (m.contentType === "v8") return { ...base, serializedBody: bytes.buffer as ArrayBuffer };
  if (m.contentType === "bytes") return { ...base, body: bytes };
  const text = utf8.decode(bytes);
  return { ...base, body: m.contentType === "json" ? JSON.parse(text) : text };
}

/** The service binding to the function named `name`, or undefined when the release has no such function. */
function functionTarget<T>(env: InternalEnv, name: string): T | undefined {
  const binding = Object.hasOwn(env.FUNCTIONS, name) ? env.FUNCTIONS[name] : undefined;
  return binding ? (env[binding] as T | undefined) : undefined;
}

/** The function named by a path under `prefix` ("/queue/links" → "links"), or undefined. */
function functionIn(pathname: string, prefix: string): string | undefined {
  return pathname.startsWith(prefix) ? /^([a-z][a-z0-9-]*)$/.exec(pathname.slice(prefix.length))?.[1] : undefined;
}

/** Delivers one batch to a function's queue() and answers its outcome. */
async function deliver(request: Request, env: InternalEnv, name: string): Promise<Response> {
  const target = functionTarget<QueueTarget>(env, name);
  if (!target) return error(404, "not_found", `No function named "${name}"`);
  let delivery: QueueDelivery;
  let messages: ServiceQueueMessage[];
  try {
    delivery = await request.json<QueueDelivery>();
    messages = delivery.messages.map(toServiceMessage);
  } catch (err) {
    return error(400, "invalid_body", `The delivery could not be read: ${(err as Error).message}`);
  }
  const result = await target.queue(delivery.queue, messages);
  return json({
    outcome: result.outcome,
    ackAll: result.ackAll,
    retryBatch: result.retryBatch,
    explicitAcks: result.explicitAcks,
    retryMessages: result.retryMessages,
  } satisfies QueueOutcome);
}

export interface InternalEnv {
  [INTERNAL_TOKEN_VAR]?: string;
  /** What functions use: PgBouncer (or the embedded database) and the Redis proxy; unset when not configured. */
  DATABASE_URL?: string;
  UPSTASH_REDIS_REST_URL?: string;
  UPSTASH_REDIS_REST_TOKEN?: string;
  /** The supervisor's collector (metrics, errors, dashboard), and its token. */
  [COLLECTOR_URL_VAR]?: string;
  [COLLECTOR_TOKEN_VAR]?: string;
  /** Function name → service binding name. */
  FUNCTIONS: Record<string, string>;
  /** The gateway's `control` entrypoint in this same process (drain). */
  GATEWAY_CONTROL?: { fetch(request: Request): Promise<Response> };
  [binding: string]: unknown;
}

interface Check {
  ok: boolean;
  ms: number;
  error?: string;
}

const CHECK_TIMEOUT_MS = 2000;

async function timed(work: () => Promise<unknown>): Promise<Check> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      work(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, ms: Date.now() - started };
  } catch (err) {
    return { ok: false, ms: Date.now() - started, error: (err as Error).message };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

async function checkDatabase(url: string, ctx: ExecutionContext): Promise<Check> {
  const sql = pgClient(url, { max: 1, idleSeconds: 0, connectTimeoutSeconds: 2 });
  try {
    return await timed(() => sql`select 1`);
  } finally {
    ctx.waitUntil(sql.end({ timeout: 1 }));
  }
}

function checkRedis(url: string, token: string): Promise<Check> {
  return timed(async () => {
    const res = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: '["PING"]' });
    const body = (await res.json()) as { result?: unknown; error?: string };
    if (!res.ok || body.result !== "PONG") throw new Error(body.error ?? `the proxy answered ${res.status}`);
  });
}

/** Redis as functions reach it when the Redis object is on: a PING through the object's connection. */
function checkRedisObject(namespace: DurableObjectNamespace): Promise<Check> {
  return timed(async () => {
    const stub = namespace.get(namespace.idFromName(REDIS_OBJECT_NAME)) as unknown as RedisObjectMethods;
    const answer = await stub.command(["PING"]);
    if ("error" in answer) throw new Error(answer.error);
    if (answer.result !== "PONG") throw new Error(`the Redis object answered ${JSON.stringify(answer.result)}`);
  });
}

/** Every configured dependency, checked at once. */
async function readinessChecks(env: InternalEnv, ctx: ExecutionContext): Promise<{ ok: boolean; checks: Record<string, Check> }> {
  const checks: Record<string, Check | Promise<Check>> = { workerd: { ok: true, ms: 0 } };
  if (env.DATABASE_URL) checks.database = checkDatabase(env.DATABASE_URL, ctx);
  if (env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN)
    checks.redis = checkRedis(env.UPSTASH_REDIS_REST_URL, env.UPSTASH_REDIS_REST_TOKEN);
  const redisObject = env[REDIS_OBJECT_BINDING] as DurableObjectNamespace | undefined;
  if (env[REDIS_OBJECT_SWITCH] === "on" && redisObject) checks.redisObject = checkRedisObject(redisObject);
  const done = Object.fromEntries(await Promise.all(Object.entries(checks).map(async ([name, c]) => [name, await c] as const)));
  return { ok: Object.values(done).every((c) => c.ok), checks: done };
}

async function readiness(env: InternalEnv, ctx: ExecutionContext): Promise<Response> {
  const result = await readinessChecks(env, ctx);
  return json(result, result.ok ? 200 : 503);
}

/** Forwards a GET to the collector, which runs in the supervisor. */
async function fromCollector(env: InternalEnv, path: string): Promise<Response> {
  if (!env[COLLECTOR_URL_VAR])
    return error(503, "collector_unavailable", "No collector is configured (WORKYARD_COLLECTOR_URL): start workyard with npm start");
  try {
    const res = await fetch(`${env[COLLECTOR_URL_VAR]}${path}`, { headers: { authorization: `Bearer ${env[COLLECTOR_TOKEN_VAR] ?? ""}` } });
    return new Response(res.body, res);
  } catch (err) {
    return error(503, "collector_unavailable", `The collector did not answer: ${(err as Error).message}`);
  }
}

async function dashboardData(env: InternalEnv, ctx: ExecutionContext, search: string): Promise<Response> {
  const [figures, health] = await Promise.all([fromCollector(env, `/dashboard/data${search}`), readinessChecks(env, ctx)]);
  if (!figures.ok) return figures;
  return json({ ...((await figures.json()) as object), health });
}

const COOKIE = "workyard_internal";

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8" } });
const error = (status: number, code: string, message: string) => json({ error: { code, message } }, status);

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/** Constant-time comparison of a presented token with the expected one (hashed first: equal lengths). */
async function sameToken(presented: string, expected: string | undefined): Promise<boolean> {
  if (!expected) return false;
  const [a, b] = await Promise.all([digest(presented), digest(expected)]);
  // workerd's own extension of SubtleCrypto; typed here because GraphQL Yoga's types bring the DOM's SubtleCrypto,
  // which lacks it, into the workers' type check.
  return (crypto.subtle as unknown as { timingSafeEqual(a: ArrayBuffer, b: ArrayBuffer): boolean }).timingSafeEqual(a, b);
}

/** The bearer header, or (for the dashboard in a browser) the cookie /dashboard?token= set. */
async function authorized(request: Request, expected: string | undefined): Promise<boolean> {
  const bearer = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1];
  if (bearer !== undefined) return sameToken(bearer, expected);
  const cookie = new RegExp(`(?:^|;\\s*)${COOKIE}=([^;]+)`).exec(request.headers.get("cookie") ?? "")?.[1];
  return cookie !== undefined && sameToken(decodeURIComponent(cookie), expected);
}

export default {
  async fetch(request: Request, env: InternalEnv, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const given = url.pathname === "/dashboard" ? url.searchParams.get("token") : null;
    if (given !== null && (await sameToken(given, env[INTERNAL_TOKEN_VAR]))) {
      return new Response(null, {
        status: 303,
        headers: { location: "/dashboard", "set-cookie": `${COOKIE}=${encodeURIComponent(given)}; HttpOnly; SameSite=Strict; Path=/` },
      });
    }
    if (!(await authorized(request, env[INTERNAL_TOKEN_VAR]))) {
      return error(401, "unauthorized", "The internal endpoints need Authorization: Bearer <WORKYARD_INTERNAL_TOKEN>");
    }
    if (url.pathname === INTERNAL_PATHS.healthz) return json({ ok: true });
    if (url.pathname === INTERNAL_PATHS.readyz) return readiness(env, ctx);
    if (url.pathname === INTERNAL_PATHS.drain) {
      if (request.method !== "POST") return error(405, "method_not_allowed", "Use POST");
      if (!env.GATEWAY_CONTROL) return error(404, "not_found", "This release cannot drain (no gateway control binding)");
      return env.GATEWAY_CONTROL.fetch(new Request(`http://gateway/drain${url.search}`, { method: "POST" }));
    }
    if (request.method === "GET") {
      if (url.pathname === "/dashboard/data") return dashboardData(env, ctx, url.search);
      if (
        url.pathname === "/metrics" ||
        url.pathname === "/errors" ||
        url.pathname === "/usage" ||
        url.pathname === "/dashboard" ||
        url.pathname.startsWith("/dashboard/assets/")
      ) {
        return fromCollector(env, `${url.pathname}${url.search}`);
      }
    }

    const queued = functionIn(url.pathname, INTERNAL_PATHS.queue);
    if (queued !== undefined) {
      if (request.method !== "POST") return error(405, "method_not_allowed", "Use POST");
      return deliver(request, env, queued);
    }

    const scheduled = functionIn(url.pathname, INTERNAL_PATHS.scheduled);
    if (scheduled !== undefined) {
      if (request.method !== "POST") return error(405, "method_not_allowed", "Use POST");
      const target = functionTarget<ScheduledTarget>(env, scheduled);
      if (!target) return error(404, "not_found", `No function named "${scheduled}"`);
      const time = Number(url.searchParams.get("scheduledTime") ?? Date.now());
      const result = await target.scheduled({ cron: url.searchParams.get("cron") ?? "", scheduledTime: new Date(time) });
      return json({ outcome: result.outcome, noRetry: result.noRetry });
    }
    return error(404, "not_found", "No such internal endpoint");
  },
};
