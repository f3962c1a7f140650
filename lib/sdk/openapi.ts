/**
 * OpenAPI 3.1 documents from a function's routes (@hono/zod-openapi). An app made by `createApp` is an OpenAPIHono:
 *
 *   const route = createRoute({ method: "post", path: "/", tags: ["links"], summary: "Create a link",
 *     security: security.userOrApiKey, middleware: [requireAuth({ apiKeysFor: "links" })],
 *     request: { body: jsonBody(createSchema, { url: "https://example.com" }) },
 *     responses: { 201: jsonResponse(linkSchema, "The link", example), ...errorResponses({ 409: "The code is taken" }) } });
 *   app.openapi(route, handler);
 *
 * Input is checked by `validate` (validate.ts) with the route's schemas, so a documented route answers exactly what a
 * `validate(...)` route answers: 400 `invalid_input` with `issues`, 415 for a body that is not JSON. The responses every
 * such route can give (400 for any checked input, 413 and 415 for a JSON body, 401 and 403 for a secured route) are
 * added to its document by `createApp`; a route lists the others it gives (404, 409, 410, 429, ...).
 *
 * The document is served at `/openapi.json` (see `serveOpenApi`), built once per isolate, with `servers` set to the
 * gateway's prefix so that a reader's "Try it" goes through it.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { OpenAPIHono, RouteConfig } from "@hono/zod-openapi";
import type { Context, Env as HonoEnv, MiddlewareHandler, ValidationTargets } from "hono";
import type { ZodType } from "zod";
import { codeForStatus } from "./errors.ts";
import { routePrefix } from "./route.ts";
import { validate } from "./validate.ts";

export { createRoute, z };
export type { RouteConfig };

/** The error shape of errors.ts, as the shared component `Error` every document refers to. */
export const errorSchema = z
  .object({
    error: z.object({
      code: z
        .string()
        .openapi({ description: "Stable and machine-readable: not_found, invalid_input, code_taken, ...", example: "not_found" }),
      message: z.string().openapi({ description: "For people", example: 'No link "abc123"' }),
      requestId: z
        .string()
        .openapi({ description: "The request's id, also in the X-Request-Id header", example: "01JF7Z9Q4W8W1T3K6C2Q0X5V7M" }),
      issues: z
        .array(
          z.object({ path: z.string().openapi({ example: "url" }), message: z.string().openapi({ example: "an absolute http(s) URL" }) }),
        )
        .optional()
        .openapi({ description: "Field problems (400 invalid_input only)" }),
    }),
  })
  .openapi("Error");

/** The statuses an error answer may have, with what they mean when a route does not say. */
const defaultDescriptions: Record<number, string> = {
  400: "The request is not valid (invalid_input lists each field's issue)",
  401: "No credentials, or credentials that are not valid (see WWW-Authenticate)",
  403: "Valid credentials that may not do this",
  404: "Not found",
  405: "The path exists, not for this method (see Allow)",
  409: "Conflict",
  410: "Gone",
  413: "The body is larger than the function accepts",
  415: "The body is not sent as JSON",
  429: "Too many requests (see Retry-After)",
  503: "Try again shortly (see Retry-After)",
};

const exampleMessages: Record<number, string> = {
  400: "Invalid JSON body: see issues",
  401: "Sign in first: send Authorization: Bearer <access token> (POST /auth/login gives one)",
  403: "Only the owner (or an admin) may do this",
  413: "The request body is larger than 1048576 bytes",
  415: 'Send the body as JSON with "Content-Type: application/json" (got "text/plain")',
  429: "Too many requests; try again in 42 s",
};

/** One error answer's description: a text, or a text and the `code` this route answers with. */
export type ErrorDescription = string | { description: string; code?: string; message?: string; field?: string };

function errorResponse(status: number, given: ErrorDescription | undefined) {
  const d: { description?: string; code?: string; message?: string; field?: string } =
    typeof given === "string" ? { description: given } : (given ?? {});
  const code = d.code ?? (status === 400 ? "invalid_input" : codeForStatus(status));
  const error: Record<string, unknown> = {
    code,
    message: d.message ?? exampleMessages[status] ?? defaultDescriptions[status] ?? "Error",
    requestId: "01JF7Z9Q4W8W1T3K6C2Q0X5V7M",
  };
  if (code === "invalid_input") error.issues = [{ path: d.field ?? "(root)", message: "Invalid input" }];
  return {
    description: d.description ?? defaultDescriptions[status] ?? "Error",
    content: { "application/json": { schema: errorSchema, example: { error } } },
  };
}

/** Error answers in the shared shape: `errorResponses({ 404: "No such link", 409: { description: "Taken", code: "code_taken" } })`. */
export function errorResponses<S extends number>(statuses: Record<S, ErrorDescription>) {
  const out = {} as Record<S, ReturnType<typeof errorResponse>>;
  for (const [status, given] of Object.entries(statuses) as [string, ErrorDescription][])
    out[Number(status) as S] = errorResponse(Number(status), given);
  return out;
}

/** A JSON answer with its schema and an example. */
export const jsonResponse = <T extends ZodType>(schema: T, description: string, example?: z.input<T>) => ({
  description,
  content: { "application/json": { schema, ...(example === undefined ? {} : { example }) } },
});

/** A required JSON request body with its schema and an example (what "Try it" starts from, and the tests send). */
export const jsonBody = <T extends ZodType>(schema: T, example: z.input<T>, description?: string) => ({
  required: true,
  ...(description ? { description } : {}),
  content: { "application/json": { schema, example } },
});

/** The security schemes a route may name; `createApp` adds those its routes use to the document. */
export const securitySchemes = {
  accessToken: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "An access token from POST /auth/signup, /auth/login or /auth/refresh (valid 15 minutes by default)",
  },
  apiKey: {
    type: "apiKey",
    in: "header",
    name: "X-Api-Key",
    description: "An API key made for this function: npm run apikey -- create <function> --name <who>",
  },
  apiKeyBearer: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "wyk_<id>_<secret>",
    description: "The same API key as a bearer token: Authorization: Bearer wyk_...",
  },
} as const;

type SchemeName = keyof typeof securitySchemes;

/** Security requirements for `createRoute({ security })`: any one of the listed schemes. */
export const security: Record<"user" | "userOrApiKey", Partial<Record<SchemeName, string[]>>[]> = {
  /** A signed-in user: requireAuth(). */
  user: [{ accessToken: [] }],
  /** A signed-in user or an API key for the function: requireAuth({ apiKeysFor }). */
  userOrApiKey: [{ accessToken: [] }, { apiKey: [] }, { apiKeyBearer: [] }],
};

/** What `createApp({ api })` puts into the document's `info`. */
export interface ApiInfo {
  title?: string;
  version?: string;
  description?: string;
}

type Route = RouteConfig & { hide?: boolean };

const afterChecks = new WeakSet<MiddlewareHandler>();

/**
 * Marks a route middleware that needs the checked input (`c.req.valid(...)`, or a body known to be valid): it runs
 * after the route's input checks, where the others run before them. `middleware: [rateLimit(...), afterInput(perAccount)]`.
 */
export function afterInput(middleware: MiddlewareHandler): MiddlewareHandler {
  afterChecks.add(middleware);
  return middleware;
}

/** The answers a route gives without saying so: for its checked input, its JSON body and its security. */
function impliedResponses(route: Route): Record<number, ErrorDescription> {
  const implied: Record<number, ErrorDescription> = {};
  const request = route.request;
  if (request?.query || request?.params || request?.body) {
    const media = request.body?.content["application/json"];
    const checked = request.body ? (media && "schema" in media ? media.schema : undefined) : (request.query ?? request.params);
    const part = request.body ? "JSON body" : request.query ? "query string" : "path parameter";
    // The example's issue names the first field checked: what a reader of this route could get wrong.
    const field = Object.keys((checked as { shape?: Record<string, unknown> } | undefined)?.shape ?? {})[0];
    implied[400] = { description: defaultDescriptions[400] ?? "", code: "invalid_input", message: `Invalid ${part}: see issues`, field };
  }
  if (request?.body) {
    implied[413] = defaultDescriptions[413] ?? "";
    implied[415] = defaultDescriptions[415] ?? "";
  }
  const secured = (route.security ?? []).length > 0;
  if (secured) implied[401] = defaultDescriptions[401] ?? "";
  if (secured && JSON.stringify(route.security).includes("apiKey")) {
    implied[403] = {
      description: "Valid credentials that may not do this (an API key made for another function)",
      message: 'This API key is for the function "auth", not this one',
    };
  }
  return implied;
}

/** The route as documented: the implied error answers added where the route does not describe them itself. */
function documentedRoute(route: Route): RouteConfig {
  const { middleware: _middleware, hide: _hide, ...rest } = route;
  const responses = { ...rest.responses };
  for (const [status, given] of Object.entries(impliedResponses(route))) responses[status] ??= errorResponse(Number(status), given);
  return { ...rest, responses };
}

/**
 * The route as registered: its input checked by `validate` (the project's error answers), after the route's own
 * middleware (authentication and rate limits come first, as they do with `validate(...)` routes).
 */
function checkedRoute(route: Route): Route {
  const { request, middleware, ...rest } = route;
  const checks: MiddlewareHandler[] = [];
  const check = (target: keyof ValidationTargets, schema: unknown) => checks.push(validate(target, schema as ZodType) as MiddlewareHandler);
  if (request?.headers || request?.cookies) {
    throw new Error(
      `${route.method.toUpperCase()} ${route.path}: createApp checks params, query and a JSON body; read headers and cookies in the handler`,
    );
  }
  if (request?.params) check("param", request.params);
  if (request?.query) check("query", request.query);
  const content = request?.body?.content ?? {};
  for (const type of Object.keys(content)) {
    if (type !== "application/json")
      throw new Error(`${route.method.toUpperCase()} ${route.path}: createApp takes JSON bodies only (got ${type})`);
    const media = content[type];
    check("json", media && "schema" in media ? media.schema : undefined);
  }
  const own = middleware === undefined ? [] : Array.isArray(middleware) ? middleware : [middleware];
  const before = (own as MiddlewareHandler[]).filter((m) => !afterChecks.has(m));
  const after = (own as MiddlewareHandler[]).filter((m) => afterChecks.has(m));
  return { ...rest, hide: true, middleware: [...before, ...checks, ...after] };
}

/**
 * Makes `app.openapi(route, handler)` check input with `validate` and document the route with its implied answers.
 * A route's own validation hook is refused: the answers are the project's.
 */
export function documentRoutes<E extends HonoEnv>(app: OpenAPIHono<E>): void {
  const register = app.openapi;
  const used = new Set<string>();
  app.openapi = ((route: Route, handler: never, hook?: unknown) => {
    if (hook !== undefined)
      throw new Error(
        `${route.method.toUpperCase()} ${route.path}: a route's own validation hook is not supported; invalid input answers the standard 400`,
      );
    if (!route.hide) {
      app.openAPIRegistry.registerPath(documentedRoute(route));
      for (const requirement of route.security ?? []) {
        for (const name of Object.keys(requirement)) {
          const scheme = securitySchemes[name as keyof typeof securitySchemes];
          if (!scheme || used.has(name)) continue;
          used.add(name);
          app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
        }
      }
    }
    return register(checkedRoute(route) as never, handler);
  }) as typeof app.openapi;
}

interface ServedDocument {
  body: string;
  etag: string;
}

/**
 * GET /openapi.json: the app's OpenAPI 3.1 document, made on the first request and kept for the isolate's life (one
 * per prefix: the gateway's "/<name>", or "" when the function is served on its own). ETag and If-None-Match; a
 * client may keep it a minute.
 */
export function serveOpenApi<E extends HonoEnv>(app: OpenAPIHono<E>, info: ApiInfo = {}) {
  // Keyed by prefix; a function served on its own believes a client's X-Forwarded-Prefix, so only a few are kept.
  const made = new Map<string, Promise<ServedDocument>>();
  const make = async (prefix: string): Promise<ServedDocument> => {
    const name = prefix.replace(/^\//, "");
    const document = app.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: info.title ?? (name || "API"),
        version: info.version ?? "1.0.0",
        ...(info.description ? { description: info.description } : {}),
      },
      servers: [{ url: prefix || "/", description: prefix ? `Through the gateway, under ${prefix}` : "This function" }],
    });
    const body = JSON.stringify(document);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
    const etag = `"${Array.from(digest.slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
    return { body, etag };
  };
  return async function openApiDocument(c: Context) {
    const prefix = routePrefix(c);
    let served = made.get(prefix);
    if (!served) {
      served = make(prefix);
      if (made.size < 4) {
        made.set(prefix, served);
        served.catch(() => made.delete(prefix));
      }
    }
    const { body, etag } = await served;
    c.header("etag", etag);
    c.header("cache-control", "public, max-age=60");
    const match = c.req.header("if-none-match");
    if (match && match.split(",").some((t) => t.trim().replace(/^W\//, "") === etag)) return c.body(null, 304);
    return c.body(body, 200, { "content-type": "application/json; charset=utf-8" });
  };
}
