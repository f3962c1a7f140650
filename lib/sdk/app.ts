/**
 * The app factory every function starts from: a Hono app with the project's standard middleware.
 *   - a request id on every request and response (`c.get("requestId")`)
 *   - CORS for the origins in the CORS_ORIGINS setting (none by default; see cors.ts)
 *   - secure headers suited to a JSON API, no X-Powered-By
 *   - a request body limit (413 beyond it)
 *   - one error handler: errors a handler means (ApiError, HTTPException) become the JSON error shape;
 *     anything else is logged with its stack and answered as a plain 500 that leaks nothing
 *   - JSON 404 for unknown paths and 405 (with `Allow`) for a known path with the wrong method
 *   - routes declared with `app.openapi(createRoute({...}), handler)` (openapi.ts): input checked by `validate`, and
 *     the app's OpenAPI 3.1 document at GET /openapi.json
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Hono } from "hono";
import type { Env as HonoEnv, Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { bodyFailureOf, bodyLimit, discardUnreadBody } from "./body-limit.ts";
import { corsFromSettings } from "./cors.ts";
import { databaseApiError } from "./db-errors.ts";
import { queueApiError } from "./queue-errors.ts";
import { errorDetails } from "./error-details.ts";
import { ApiError, errorBody } from "./errors.ts";
import { acceptInlineRoutes, routedPath } from "./route.ts";
import { allowedMethods } from "./method-not-allowed.ts";
import { documentRoutes, serveOpenApi } from "./openapi.ts";
import type { ApiInfo } from "./openapi.ts";
import { requestId } from "./request-id.ts";

declare module "hono" {
  interface ContextVariableMap {
    /**
     * The Content-Security-Policy of an HTML page a route serves (GraphiQL, an API reference), in place of the API's
     * `default-src 'none'`: `c.set("contentSecurityPolicy", "default-src 'self'; ...")`.
     */
    contentSecurityPolicy: string;
  }
}

export interface AppOptions {
  /** Largest request body accepted, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** The `info` of the app's OpenAPI document (/openapi.json); the title defaults to the function's name. */
  api?: ApiInfo;
}

/** Answers an error in the standard JSON shape. */
export function renderError(thrown: Error, c: Context): Response {
  const id = c.get("requestId") ?? "unknown";
  // An error the app means (ApiError, HTTPException) is never taken for a database failure, whatever its message.
  const err =
    thrown instanceof HTTPException ? (bodyFailureOf(c.req.raw) ?? thrown) : (databaseApiError(thrown) ?? queueApiError(thrown) ?? thrown);
  if (err !== thrown) console.error(`database or queue error in ${c.req.method} ${c.req.path} [${id}]`, errorDetails(thrown));
  if (err instanceof ApiError) {
    // Set on the context too: Hono copies headers set earlier in the request (e.g. by an earlier rate limit)
    // over the error response, and the error's own must win.
    for (const [name, value] of Object.entries(err.headers ?? {})) c.header(name, value);
    return c.json(errorBody(err.status, err.message, id, { code: err.code, issues: err.issues }), err.status);
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const message = status >= 500 ? "Internal error" : err.message || "Bad request";
    return c.json(errorBody(status, message, id), status);
  }
  // Not meant for the client: log everything, answer nothing about it.
  console.error(`unhandled error in ${c.req.method} ${c.req.path} [${id}]`, errorDetails(err));
  return c.json(errorBody(500, "Internal error", id), 500);
}

const made: OpenAPIHono<never>[] = [];

/** The apps `createApp` made in this module graph, oldest first: a test compares an app's routes with its document. */
export function appsMade(): readonly OpenAPIHono<never>[] {
  return made;
}

/** A Hono app with the standard middleware and error handling installed. */
export function createApp<E extends HonoEnv = HonoEnv>({ maxBodyBytes = 1024 * 1024, api }: AppOptions = {}): OpenAPIHono<E> {
  // Routes on the path below the gateway's prefix when the gateway hands a request over in its isolate (see
  // route.ts), else on the request's path.
  const app = new OpenAPIHono<E>({ getPath: routedPath });
  acceptInlineRoutes(app);
  documentRoutes(app);
  made.push(app as unknown as OpenAPIHono<never>);
  app.use(async function discardUnread(c, next) {
    const received = c.req.raw;
    await next();
    await discardUnreadBody(received);
  });
  app.use(requestId());
  app.use(corsFromSettings());
  // Registered before secureHeaders so that its step after the handler runs last: a page's own policy wins.
  app.use(async function pagePolicy(c, next) {
    await next();
    const policy = c.get("contentSecurityPolicy");
    if (policy) c.res.headers.set("content-security-policy", policy);
  });
  app.use(
    secureHeaders({
      // A JSON API never needs to load anything, frame anything or be framed.
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      crossOriginResourcePolicy: "same-origin",
      xFrameOptions: "DENY",
      xContentTypeOptions: true,
      referrerPolicy: true,
      // HSTS only means something over TLS; sent below when the request came in over https.
      strictTransportSecurity: false,
      // Headers for HTML documents and old browsers (OWASP's REST Security Cheat Sheet lists none of them for
      // API answers): each costs a Headers call per response, about 1 µs inside workerd.
      crossOriginOpenerPolicy: false,
      originAgentCluster: false,
      xDnsPrefetchControl: false,
      xDownloadOptions: false,
      xPermittedCrossDomainPolicies: false,
      xXssProtection: false,
      removePoweredBy: true,
    }),
  );
  app.use(async function hsts(c, next) {
    await next();
    if (c.req.url.startsWith("https:") || c.req.header("x-forwarded-proto") === "https") {
      c.header("strict-transport-security", "max-age=31536000; includeSubDomains");
    }
  });
  // A handler that returns a fetch()'s answer as it is (a proxy, env.ASSETS.fetch) hands back immutable headers, which
  // the steps above would fail to add to (a 500): they get a copy that takes them. Registered after them, so that
  // this runs first once the handler has answered.
  app.use(async function mutableAnswer(c, next) {
    await next();
    try {
      c.res.headers.delete("x-workyard-mutable-check");
    } catch {
      c.res = new Response(c.res.body, c.res);
    }
  });
  app.use(bodyLimit({ maxBytes: maxBodyBytes }));
  app.onError(renderError);
  // Registered first: it wins over a function's own "/:param" routes. Not in the document itself.
  app.get("/openapi.json", serveOpenApi(app, api));
  app.notFound((c) => {
    const path = c.req.path;
    const allow = allowedMethods(app as unknown as Hono<never>, path);
    if (allow.length > 0) {
      c.header("allow", allow.join(", "));
      return c.json(errorBody(405, `${c.req.method} is not allowed here; use ${allow.join(", ")}`, c.get("requestId")), 405);
    }
    const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
    return c.json(errorBody(404, `No route for ${c.req.method} ${shown}`, c.get("requestId")), 404);
  });
  return app;
}
