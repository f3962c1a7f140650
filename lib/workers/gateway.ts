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
import { discardUnreadBody, hasBodyItCannotHave } from "../sdk/body-limit.ts";
import { clientIpOf } from "../sdk/client-ip.ts";
import { holdWhileDraining } from "./drain.ts";
import { errorResponse } from "../sdk/errors.ts";
import { errorDetails } from "../sdk/error-details.ts";
import { WorkerEntrypoint } from "cloudflare:workers";
import { COLLECTOR_URL_VAR, FORWARDED_PREFIX_HEADER, HOST_OBJECT_NAME, inlineQueueBinding, inlineSecretBinding } from "../shared/names.ts";
import { REDIS_OBJECT_BINDING, REDIS_OBJECT_SWITCH } from "../shared/redis-object.ts";
import { setInlineRoute, takesInlineRoutes } from "../sdk/route.ts";
import { traced } from "./trace/gateway.ts";
import type { ErrorLog } from "./trace/gateway.ts";
import { serveAsset } from "./assets/serve.ts";
import type { FileStore } from "./assets/serve.ts";
import { runsWorkerFirst } from "./assets/worker-first.ts";
import type { AssetsManifest } from "../shared/assets.ts";
import type { FunctionCallProps } from "../shared/names.ts";
import { acceptOrCreateRequestId, REQUEST_ID_HEADER } from "../sdk/request-id.ts";
import type { CollectorEnv } from "./trace/sender.ts";
import { DeadlineExceeded, withDeadline } from "./deadline.ts";

export interface GatewayRoute {
  /** Name of the service binding that reaches the function (isolated functions). */
  binding: string;
  /** True when the function runs in the gateway's isolate. */
  inline?: boolean;
  /** True when the binding is the function's host object namespace (a function with a database pool). */
  hosted?: boolean;
  timeoutMs: number;
  maxBodyBytes: number;
  /** Its static assets: the binding of their stored files, and when its code runs before them. */
  assets?: { files: string; runWorkerFirst: boolean | string[] };
}

/** What an in-isolate function exports: a Hono app or any `{ fetch }` worker. */
export interface InlineHandler {
  fetch(request: Request, env: unknown, ctx: ExecutionContext): Response | Promise<Response>;
}

export interface GatewayEnv extends CollectorEnv {
  ROUTES: Record<string, GatewayRoute>;
  /** Set when TLS is on: plain-HTTP requests are redirected to HTTPS on this port. */
  HTTPS_PORT?: number;
  /** The asset table of each function with static assets (lib/shared/assets.ts). */
  ASSETS_MANIFESTS?: Record<string, AssetsManifest>;
  /** Vars of each in-isolate function, and the names of its secrets. */
  INLINE_ENV?: Record<string, { vars: Record<string, unknown>; secrets: string[]; queues?: string[]; redis?: boolean }>;
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
    for (const queue of spec.queues ?? []) fnEnv[queue] = env[inlineQueueBinding(name, queue)];
    // The Redis object, for a function that declares the Upstash secrets (lib/sdk/redis.ts decides whether to use it).
    if (spec.redis) for (const binding of [REDIS_OBJECT_BINDING, REDIS_OBJECT_SWITCH]) fnEnv[binding] = env[binding];
    perFunction.set(name, fnEnv);
  }
  return fnEnv;
}

// The access log: one record per request, sent to the collector with the request's console lines (trace/gateway.ts).
const inFlight = new Map<string, number>();
let processId: string | undefined;

/**
 * A request's URL split once per request, by string: workerd hands the gateway an absolute URL, and a URL object
 * (parsed, changed, serialized again for the forwarded request) cost more than the routing it served.
 */
interface Target {
  /** "http://host:port", no trailing slash. */
  origin: string;
  /** The first path segment ("" for the index). */
  name: string;
  /** The path the function sees: what follows the first segment, "/" at least; the query string follows it. */
  rest: string;
  /** The request's path (without the query), for the access record. */
  path: string;
  requestId: string;
  /** True for a call through a [[services]] binding (createFunctionCall), which never leaves the machine. */
  call?: boolean;
}

/** Where an absolute URL's path starts (-1 when it has none), by string. */
const pathStartOf = (url: string) => url.indexOf("/", url.indexOf("//") + 2);

function target(request: Request): Target {
  const url = request.url;
  const pathStart = pathStartOf(url);
  if (pathStart === -1)
    return { origin: url, name: "", rest: "/", path: "/", requestId: acceptOrCreateRequestId(request.headers.get(REQUEST_ID_HEADER)) };
  const queryStart = url.indexOf("?", pathStart);
  const pathEnd = queryStart === -1 ? url.length : queryStart;
  const slash = url.indexOf("/", pathStart + 1);
  const nameEnd = slash === -1 || slash > pathEnd ? pathEnd : slash;
  return {
    origin: url.slice(0, pathStart),
    name: url.slice(pathStart + 1, nameEnd),
    rest: nameEnd === pathEnd ? `/${url.slice(pathEnd)}` : url.slice(nameEnd),
    path: url.slice(pathStart, pathEnd),
    requestId: acceptOrCreateRequestId(request.headers.get(REQUEST_ID_HEADER)),
  };
}

/** Routes one request to its function and, when a collector is set, records it (the access log, the metrics). */
function dispatch(request: Request, to: Target, env: GatewayEnv, ctx: ExecutionContext, inline: Record<string, InlineHandler>) {
  const route = to.name !== "" && Object.hasOwn(env.ROUTES, to.name) ? env.ROUTES[to.name] : undefined;
  // Without a collector nothing is recorded: no record, no in-flight count, no client IP.
  if (!env[COLLECTOR_URL_VAR]) return handle(request, to, route, env, ctx, inline, console.error);
  const started = Date.now();
  const fn = route ? to.name : null;
  const key = fn ?? "";
  const current = (inFlight.get(key) ?? 0) + 1;
  inFlight.set(key, current);
  return traced(
    env,
    ctx,
    route?.inline === true,
    (log) => handle(request, to, route, env, ctx, inline, log),
    () => inFlight.set(key, (inFlight.get(key) ?? 1) - 1),
    (response) => {
      // Eight hex digits tell a process from the few others serving beside it, in fewer bytes per record than a UUID.
      processId ??= crypto.randomUUID().slice(0, 8);
      return {
        id: to.requestId,
        fn,
        method: request.method,
        path: to.path.slice(0, 256),
        status: response?.status ?? 500,
        ms: Date.now() - started,
        // Read after the request was forwarded, so the forwarded copy's cf was not parsed yet (client-ip.ts).
        ip: clientIpOf(request),
        inflight: current,
        proc: processId,
        ts: started,
      };
    },
  );
}

/** The gateway worker, with the handlers of the functions that run in its isolate. */
export function createGateway(inline: Record<string, InlineHandler> = {}) {
  return {
    async fetch(request: Request, env: GatewayEnv, ctx: ExecutionContext): Promise<Response> {
      // Only while this process is being replaced (see drain.ts); otherwise undefined, no await.
      const hold = holdWhileDraining();
      if (hold) await hold;
      return dispatch(request, target(request), env, ctx, inline);
    },
  };
}

/**
 * What a call through a function's [[services]] binding reaches: the entrypoint's props name the function called,
 * and the URL's path is the path that function sees (its host is ignored, as on Cloudflare). The call gets what any
 * request to that function gets (deadline, body limit, assets, request record), except the redirect to HTTPS.
 */
export function createFunctionCall(inline: Record<string, InlineHandler> = {}) {
  return class FunctionCall extends WorkerEntrypoint<GatewayEnv, Partial<FunctionCallProps>> {
    override async fetch(request: Request): Promise<Response> {
      const fn = this.ctx.props.fn ?? "";
      const url = request.url;
      const pathStart = pathStartOf(url);
      const rest = pathStart === -1 ? "/" : url.slice(pathStart);
      const queryStart = rest.indexOf("?");
      const to: Target = {
        origin: pathStart === -1 ? url : url.slice(0, pathStart),
        name: fn,
        rest,
        path: `/${fn}${queryStart === -1 ? rest : rest.slice(0, queryStart)}`,
        requestId: acceptOrCreateRequestId(request.headers.get(REQUEST_ID_HEADER)),
        call: true,
      };
      return dispatch(request, to, this.env, this.ctx, inline);
    }
  };
}

async function handle(
  request: Request,
  { origin, name, rest, requestId, call }: Target,
  route: GatewayRoute | undefined,
  env: GatewayEnv,
  ctx: ExecutionContext,
  inline: Record<string, InlineHandler>,
  log: ErrorLog,
): Promise<Response> {
  if (env.HTTPS_PORT !== undefined && !call && origin.startsWith("http:"))
    return toHttps(new URL(request.url), env.HTTPS_PORT, request.method, requestId);
  if (name === "") return index(env, requestId);

  const handler = route?.inline ? inline[name] : undefined;
  const bound = route && !route.inline ? env[route.binding] : undefined;
  const target = bound && route?.hosted ? hostObject(bound as DurableObjectNamespace) : (bound as FunctionBinding | undefined);
  if (!route || !(target || handler)) {
    await discardUnreadBody(request);
    return errorResponse(404, `No function named "${name.slice(0, 64)}"; see / for the list`, requestId);
  }

  // Each header read crosses into workerd (about 1 µs): the framing headers are read once for the three checks.
  const headers = request.headers;
  // RFC 9112 3.2: more than one Host field line is a 400 (workerd joins them with ", " and would route on the first).
  if (headers.get("host")?.includes(",")) {
    await discardUnreadBody(request);
    return errorResponse(400, "More than one Host header", requestId, { code: "invalid_request" });
  }
  const transferEncoding = headers.get("transfer-encoding");
  const contentLength = headers.get("content-length");
  // RFC 9112 6.1: a message with both is ambiguous (the classic request-smuggling shape). workerd frames it by the
  // Transfer-Encoding and closes the connection after; the function never sees it either.
  if (transferEncoding !== null && contentLength !== null) {
    return errorResponse(400, "Content-Length and Transfer-Encoding together: send one", requestId, { code: "invalid_request" });
  }
  if (hasBodyItCannotHave(request, transferEncoding, contentLength)) {
    // Forwarding it would throw (a Request with a GET or HEAD method cannot have a body): the client's 400, not a 500.
    await discardUnreadBody(request);
    return errorResponse(400, `A ${request.method} request cannot have a body`, requestId, { code: "invalid_body" });
  }
  const length = Number(contentLength ?? 0);
  if (length > route.maxBodyBytes) {
    // Answering while the client is still sending makes workerd reset the connection (body-limit.ts): read and
    // drop a body of moderate size first, briefly.
    await discardUnreadBody(request);
    return errorResponse(413, `Request body is larger than ${route.maxBodyBytes} bytes`, requestId);
  }

  if (route.assets) {
    const queryStart = rest.indexOf("?");
    const path = queryStart === -1 ? rest : rest.slice(0, queryStart);
    const manifest = env.ASSETS_MANIFESTS?.[name];
    if (manifest && !runsWorkerFirst(route.assets.runWorkerFirst, path)) {
      const search = queryStart === -1 ? "" : rest.slice(queryStart);
      try {
        const files = env[route.assets.files] as FileStore;
        // The deadline bounds only reads from the disk service: a file kept in memory is answered at once.
        const deadline = <T>(work: Promise<T>) => withDeadline(work, route.timeoutMs);
        const asset = await serveAsset({ request, path, search, prefix: `/${name}`, requestId, deadline }, manifest, files);
        if (asset) {
          if (request.method !== "GET" && request.method !== "HEAD") await discardUnreadBody(request);
          return asset;
        }
      } catch (err) {
        log(`function "${name}": its assets could not be served [${requestId}]`, errorDetails(err));
        return errorResponse(500, "Internal error", requestId);
      }
    }
  }

  let response: Response;
  try {
    let work: Promise<Response>;
    if (handler && takesInlineRoutes(handler)) {
      // An app made by createApp in this isolate: handed the request as it is (route.ts), no copy.
      setInlineRoute(request, { prefix: `/${name}`, requestId });
      work = Promise.resolve(handler.fetch(request, inlineEnv(env, name), ctx));
    } else {
      const forwarded = new Request(origin + rest, request);
      forwarded.headers.set(REQUEST_ID_HEADER, requestId);
      forwarded.headers.set(FORWARDED_PREFIX_HEADER, `/${name}`);
      work = handler ? Promise.resolve(handler.fetch(forwarded, inlineEnv(env, name), ctx)) : (target as FunctionBinding).fetch(forwarded);
    }
    response = await withDeadline(work, route.timeoutMs);
  } catch (err) {
    if (err instanceof DeadlineExceeded) {
      log(`function "${name}" did not answer within ${route.timeoutMs} ms [${requestId}]`);
      return errorResponse(504, `The function did not answer within ${route.timeoutMs} ms`, requestId);
    }
    log(`function "${name}" threw [${requestId}]`, errorDetails(err));
    return errorResponse(500, "Internal error", requestId);
  }
  if (response.headers.get(REQUEST_ID_HEADER) === requestId) return response;
  const tagged = new Response(response.body, response);
  tagged.headers.set(REQUEST_ID_HEADER, requestId);
  return tagged;
}

export default createGateway();
