/**
 * The gateway worker: the only thing on the public socket. It routes `/<name>/...` to the function
 * `<name>` (stripping the prefix, so every function sees itself at `/`, as it would deployed on its own),
 * assigns the request id, enforces the body limit and the deadline, and turns anything a function fails to
 * answer into the standard JSON error. Kept small: every line here runs on every request.
 *
 * A function is reached either through a service binding (its own isolate: the default) or, when it asks
 * for `isolate = false`, by calling its handler in this isolate: no hop, about twice the throughput for a
 * small request, at the price of sharing globals and compatibility settings with the other such functions.
 * The build generates an entry module that passes those handlers to `createGateway`.
 */
import { discardUnreadBody } from "./body-limit.ts";
import { holdWhileDraining } from "./drain.ts";
import { errorResponse } from "./errors.ts";
import { errorDetails } from "./error-details.ts";
import { HOST_OBJECT_NAME, inlineSecretBinding } from "./inline-names.ts";
import { traced } from "./gateway-trace.ts";
import { acceptOrCreateRequestId, REQUEST_ID_HEADER } from "./request-id.ts";
import type { CollectorEnv } from "./trace-sender.ts";

export interface GatewayRoute {
  /** Name of the service binding that reaches the function (isolated functions). */
  binding: string;
  /** True when the function runs in the gateway's isolate. */
  inline?: boolean;
  /** True when the binding is the function's host object namespace (a function with a database pool). */
  hosted?: boolean;
  timeoutMs: number;
  maxBodyBytes: number;
}

/** What an in-isolate function exports: a Hono app or any `{ fetch }` worker. */
export interface InlineHandler {
  fetch(request: Request, env: unknown, ctx: ExecutionContext): Response | Promise<Response>;
}

export interface GatewayEnv extends CollectorEnv {
  ROUTES: Record<string, GatewayRoute>;
  /** Set when TLS is on: plain-HTTP requests are redirected to HTTPS on this port. */
  HTTPS_PORT?: number;
  /** Vars of each in-isolate function, and the names of its secrets. */
  INLINE_ENV?: Record<string, { vars: Record<string, unknown>; secrets: string[] }>;
  [binding: string]: unknown;
}


interface FunctionBinding {
  fetch(request: Request): Promise<Response>;
}

/**
 * The host object's id in this process, made once (ids are plain values). Stubs are per request: a stub kept from
 * an earlier request fails every later one (tried: all answers were errors).
 */
const hostIds = new WeakMap<DurableObjectNamespace, DurableObjectId>();

function hostObject(namespace: DurableObjectNamespace): FunctionBinding {
  let id = hostIds.get(namespace);
  if (!id) hostIds.set(namespace, (id = namespace.idFromName(HOST_OBJECT_NAME)));
  return namespace.get(id);
}

class DeadlineExceeded extends Error {}

/** "127.0.0.1:5123" → "127.0.0.1", "[::1]:5123" → "::1". */
function withoutPort(address: string): string {
  if (address.startsWith("[")) return address.slice(1, address.indexOf("]"));
  return address.split(":").length === 2 ? (address.split(":")[0] ?? address) : address;
}

const loopback = /^(127\.|::1$|::ffff:127\.)/;

/**
 * The client's IP: the peer workerd saw, or, when the peer is a proxy on this machine (Caddy in front), the
 * address that proxy appended to X-Forwarded-For. A header from a remote client is never believed.
 */
function clientIp(request: Request): string {
  const peer = withoutPort(((request as { cf?: { clientIp?: string } }).cf?.clientIp ?? "").trim());
  const forwarded = request.headers.get("x-forwarded-for");
  if (forwarded && (peer === "" || loopback.test(peer))) {
    const last = forwarded.split(",").at(-1)?.trim();
    if (last && /^[0-9a-fA-F.:]{2,45}$/.test(last)) return last;
  }
  return peer || "unknown";
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded()), ms);
  });
  return Promise.race([work, deadline]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

function index(env: GatewayEnv, requestId: string): Response {
  const functions = Object.keys(env.ROUTES).sort();
  return new Response(JSON.stringify({ service: "workyard", functions: functions.map((name) => `/${name}`) }), {
    headers: { "content-type": "application/json; charset=utf-8", [REQUEST_ID_HEADER]: requestId },
  });
}

/** The same URL over HTTPS: 301 for GET and HEAD, 308 otherwise (so a POST stays a POST with its body). */
function toHttps(url: URL, port: number, method: string, requestId: string): Response {
  const target = new URL(url);
  target.protocol = "https:";
  target.port = port === 443 ? "" : String(port);
  return new Response(null, {
    status: method === "GET" || method === "HEAD" ? 301 : 308,
    headers: { location: target.href, [REQUEST_ID_HEADER]: requestId },
  });
}

/** Each in-isolate function's env, built once per gateway env (so a function's own caches keyed by env hold). */
const inlineEnvs = new WeakMap<object, Map<string, Record<string, unknown>>>();

function inlineEnv(env: GatewayEnv, name: string): Record<string, unknown> {
  let perFunction = inlineEnvs.get(env);
  if (!perFunction) inlineEnvs.set(env, (perFunction = new Map()));
  let fnEnv = perFunction.get(name);
  if (!fnEnv) {
    const spec = env.INLINE_ENV?.[name] ?? { vars: {}, secrets: [] };
    fnEnv = { ...spec.vars };
    for (const secret of spec.secrets) fnEnv[secret] = env[inlineSecretBinding(name, secret)];
    perFunction.set(name, fnEnv);
  }
  return fnEnv;
}

// The access log: one record per request, sent to the collector with the request's console lines (gateway-trace.ts).
const inFlight = new Map<string, number>();
let processId: string | undefined;

/** A request's URL split once per request: the first path segment names the function, the rest goes to it. */
interface Target {
  url: URL;
  /** The first path segment ("" for the index). */
  name: string;
  /** The path the function sees: what follows the first segment, "/" at least. */
  rest: string;
  clientIp: string;
  requestId: string;
}

function target(request: Request): Target {
  const url = new URL(request.url);
  const slash = url.pathname.indexOf("/", 1);
  const name = slash === -1 ? url.pathname.slice(1) : url.pathname.slice(1, slash);
  return {
    url,
    name,
    rest: slash === -1 ? "/" : url.pathname.slice(slash),
    clientIp: clientIp(request),
    requestId: acceptOrCreateRequestId(request.headers.get(REQUEST_ID_HEADER)),
  };
}

/** The gateway worker, with the handlers of the functions that run in its isolate. */
export function createGateway(inline: Record<string, InlineHandler> = {}) {
  return {
    async fetch(request: Request, env: GatewayEnv, ctx: ExecutionContext): Promise<Response> {
      // Only while this process is being replaced (see drain.ts); otherwise undefined, no await.
      const hold = holdWhileDraining();
      if (hold) await hold;
      const started = Date.now();
      const to = target(request);
      const path = to.url.pathname.slice(0, 256);
      const route = to.name !== "" && Object.hasOwn(env.ROUTES, to.name) ? env.ROUTES[to.name] : undefined;
      const fn = route ? to.name : null;
      const key = fn ?? "";
      const current = (inFlight.get(key) ?? 0) + 1;
      inFlight.set(key, current);
      return traced(
        env,
        ctx,
        () => handle(request, to, route, env, ctx, inline),
        () => inFlight.set(key, (inFlight.get(key) ?? 1) - 1),
        (response) => {
          processId ??= crypto.randomUUID();
          return {
            id: to.requestId,
            fn,
            method: request.method,
            path,
            status: response?.status ?? 500,
            ms: Date.now() - started,
            ip: to.clientIp,
            inflight: current,
            proc: processId,
          };
        },
      );
    },
  };
}

async function handle(
  request: Request,
  { url, name, rest, clientIp: ip, requestId }: Target,
  route: GatewayRoute | undefined,
  env: GatewayEnv,
  ctx: ExecutionContext,
  inline: Record<string, InlineHandler>,
): Promise<Response> {
  if (env.HTTPS_PORT !== undefined && url.protocol === "http:") return toHttps(url, env.HTTPS_PORT, request.method, requestId);
  if (name === "") return index(env, requestId);

  const handler = route?.inline ? inline[name] : undefined;
  const bound = route && !route.inline ? env[route.binding] : undefined;
  const target = bound && route?.hosted ? hostObject(bound as DurableObjectNamespace) : (bound as FunctionBinding | undefined);
  if (!route || !(target || handler)) {
    await discardUnreadBody(request);
    return errorResponse(404, `No function named "${name.slice(0, 64)}"; see / for the list`, requestId);
  }

  const length = Number(request.headers.get("content-length") ?? 0);
  if (length > route.maxBodyBytes) {
    // Answering while the client is still sending makes workerd reset the connection (body-limit.ts): read and
    // drop a body of moderate size first.
    await discardUnreadBody(request);
    return errorResponse(413, `Request body is larger than ${route.maxBodyBytes} bytes`, requestId);
  }

  url.pathname = rest;
  const forwarded = new Request(url, request);
  forwarded.headers.set(REQUEST_ID_HEADER, requestId);
  forwarded.headers.set("x-forwarded-prefix", `/${name}`);
  forwarded.headers.set("x-client-ip", ip);

  let response: Response;
  try {
    const work = handler ? Promise.resolve(handler.fetch(forwarded, inlineEnv(env, name), ctx)) : (target as FunctionBinding).fetch(forwarded);
    response = await withDeadline(work, route.timeoutMs);
  } catch (err) {
    if (err instanceof DeadlineExceeded) {
      console.error(`function "${name}" did not answer within ${route.timeoutMs} ms [${requestId}]`);
      return errorResponse(504, `The function did not answer within ${route.timeoutMs} ms`, requestId);
    }
    console.error(`function "${name}" threw [${requestId}]`, errorDetails(err));
    return errorResponse(500, "Internal error", requestId);
  }
  if (response.headers.get(REQUEST_ID_HEADER) === requestId) return response;
  const tagged = new Response(response.body, response);
  tagged.headers.set(REQUEST_ID_HEADER, requestId);
  return tagged;
}

export default createGateway();
