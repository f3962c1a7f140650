/**
 * How the gateway hands a request to an app made by `createApp` that runs in its own isolate (isolate = false)
 * without copying it. A forwarded `new Request(url, request)` costs workerd 12-18 µs of CPU (wrk, CPU per request),
 * more than the rest of the gateway's routing together, so for these apps the gateway passes the request it
 * received and says here what it would have written into the copy: the prefix to strip and the request id.
 *
 * The app routes on the path below its prefix (`c.req.path`), as everywhere; `c.req.url` is the URL the client
 * asked for, prefix included. Anything else in the gateway's isolate (a plain `{ fetch }` worker) still gets a
 * forwarded copy with the prefix stripped from its URL.
 */
import type { Context, Hono } from "hono";
import type { Env as HonoEnv } from "hono";
import { getPath } from "hono/utils/url";
import { FORWARDED_PREFIX_HEADER } from "../shared/names.ts";

/** What the gateway would otherwise put into a forwarded copy of the request. */
export interface InlineRoute {
  /** "/<name>": the path prefix the gateway routed on. */
  prefix: string;
  /** The request id the gateway assigned (already checked or made by it). */
  requestId: string;
}

const routes = new WeakMap<Request, InlineRoute>();
const apps = new WeakSet<object>();

declare module "hono" {
  interface ContextVariableMap {
    /** "/<name>" when the request came through the gateway, "" when the function is served on its own. */
    routePrefix: string;
  }
}

/** The path Hono routes on: below the gateway's prefix for a request handed over in the gateway's isolate. */
export function routedPath(request: Request): string {
  const path = getPath(request);
  const route = routes.get(request);
  return route ? path.slice(route.prefix.length) || "/" : path;
}

/** Marks an app made by createApp (it routes with `routedPath`), so the gateway can hand it requests as they are. */
export function acceptInlineRoutes<E extends HonoEnv>(app: Hono<E>): void {
  apps.add(app);
}

/** True when `handler` routes with `routedPath`: the gateway may hand it the request it received. */
export function takesInlineRoutes(handler: object): boolean {
  return apps.has(handler);
}

/** Called by the gateway before it hands `request` to such an app. */
export function setInlineRoute(request: Request, route: InlineRoute): void {
  routes.set(request, route);
}

/** What the gateway said about `request`, if it handed it over in its isolate. */
export function inlineRouteOf(request: Request): InlineRoute | undefined {
  return routes.get(request);
}

/**
 * The prefix the gateway routed this request on ("/links"), for building links to the function's own paths;
 * "" when the function is served on its own (wrangler dev, Cloudflare, Deno).
 */
export function routePrefix(c: Context): string {
  return c.get("routePrefix") ?? c.req.header(FORWARDED_PREFIX_HEADER) ?? "";
}
