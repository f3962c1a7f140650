/**
 * Request ids: the gateway assigns one to every request (keeping a well-formed id a client or proxy sent)
 * and passes it to the function in `x-request-id`; functions run on their own (wrangler dev, Cloudflare,
 * Deno) make their own. Every response carries it back.
 */
import type { MiddlewareHandler } from "hono";
import { inlineRouteOf } from "./route.ts";

export const REQUEST_ID_HEADER = "x-request-id";

const wellFormed = /^[A-Za-z0-9._:-]{8,128}$/;

/** The incoming id when it is safe to echo back (no header injection, bounded length), else a new UUID. */
export function acceptOrCreateRequestId(incoming: string | null | undefined): string {
  return incoming && wellFormed.test(incoming) ? incoming : crypto.randomUUID();
}

declare module "hono" {
  interface ContextVariableMap {
    requestId: string;
  }
}

/**
 * Sets `c.get("requestId")` and the `x-request-id` response header; for a request the gateway handed over in its
 * isolate (route.ts), the gateway's id and `c.get("routePrefix")`.
 */
export const requestId = (): MiddlewareHandler =>
  async function requestId(c, next) {
    const route = inlineRouteOf(c.req.raw);
    if (route) c.set("routePrefix", route.prefix);
    const id = route ? route.requestId : acceptOrCreateRequestId(c.req.header(REQUEST_ID_HEADER));
    c.set("requestId", id);
    c.header(REQUEST_ID_HEADER, id);
    await next();
    // A handler that returned a Response of its own (GraphQL Yoga's, a proxied fetch) did not get the header above:
    // every answer carries it, served through the gateway (which adds it) or alone (wrangler dev, Cloudflare, Deno).
    if (!c.res.headers.has(REQUEST_ID_HEADER)) {
      try {
        c.res.headers.set(REQUEST_ID_HEADER, id);
      } catch {
        // Immutable headers (a fetch's answer passed on): a copy that can carry it.
        c.res = new Response(c.res.body, c.res);
        c.res.headers.set(REQUEST_ID_HEADER, id);
      }
    }
  };
