/**
 * A GraphQL endpoint for a function, made once per worker and safe on a public port:
 *
 *   const schema = createSchema({ typeDefs, resolvers });
 *   app.on(["GET", "POST"], "/", graphql({ schema, context: (c) => ({ loaders: loaders(c) }) }));
 *
 * - GraphQL Yoga: GraphQL over HTTP (GET for queries, POST; `application/graphql-response+json`), batching bounded.
 * - Hostile queries are refused before they cost anything (limits.ts): tokens, depth, aliases, directives, and a cost
 *   that multiplies list sizes; field suggestions and introspection are off, both on under `npm run dev`.
 * - Errors are masked (errors.ts): a resolver's ApiError keeps its message and code, the rest is "Internal error" in
 *   the answer and the stack in the log; every error carries the request id.
 * - Persisted operations (trusted documents): `persistedOperations` maps ids to documents; clients send
 *   `{"documentId": "<id>"}` (or `?documentId=<id>&variables=...` as a GET) or Apollo's
 *   `extensions.persistedQuery.sha256Hash`. With GRAPHQL_TRUSTED_DOCUMENTS_ONLY
 *   = true in the function's vars, anything else is refused.
 * - GraphiQL under `npm run dev` (GET with Accept: text/html), from the project's own files: no outside network. Only
 *   the dev bundler puts its page into the bundle (#workyard/graphiql).
 *
 * Resolvers get `context.c` (the Hono context: `db(c)`, `redis(c)`, `authenticate(c)`) and what `context(c)` adds.
 */
import { blockFieldSuggestionsPlugin } from "@escape.tech/graphql-armor-block-field-suggestions";
import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxDirectivesPlugin } from "@escape.tech/graphql-armor-max-directives";
import { useDisableIntrospection } from "@graphql-yoga/plugin-disable-introspection";
import { usePersistedOperations } from "@graphql-yoga/plugin-persisted-operations";
import type { GraphQLSchema } from "graphql";
import { createYoga } from "graphql-yoga";
import type { GraphQLParams, Plugin, YogaServerInstance } from "graphql-yoga";
import type { Context, Handler } from "hono";
import { renderGraphiQL } from "#workyard/graphiql";
import { flag, isDevelopment, perEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { isJsonContentType } from "../validate.ts";
import { copyRequest } from "../request-copy.ts";
import { routePrefix } from "../route.ts";
import { maskError, withRequestIds } from "./errors.ts";
import { armorRejects, costLimit, GRAPHQL_LIMITS, tokenLimit } from "./limits.ts";
import type { GraphQLLimits } from "./limits.ts";

export { GRAPHQL_LIMITS } from "./limits.ts";
export type { GraphQLLimits } from "./limits.ts";

/** The var that turns on trusted-documents mode: only persisted operations run. */
export const TRUSTED_DOCUMENTS_VAR = "GRAPHQL_TRUSTED_DOCUMENTS_ONLY";

/** What every resolver's context holds, besides what the function's `context(c)` adds. */
export interface GraphQLContext {
  /** The request's Hono context. */
  c: Context;
}

export interface GraphQLOptions<T extends object> {
  schema: GraphQLSchema;
  /** What the function adds to each request's context (e.g. its DataLoaders, made per request). */
  context?: (c: Context) => T;
  /** Trusted documents: id → GraphQL document. */
  persistedOperations?: Readonly<Record<string, string>>;
  /** Overrides of GRAPHQL_LIMITS. */
  limits?: Partial<GraphQLLimits>;
  /** The title of GraphiQL's page (dev only). */
  title?: string;
}

/**
 * The id a client sent: `documentId` (GraphQL over HTTP's trusted documents; "sha256:<hex>" or the bare id) in a POST
 * body or a GET's query string, or Apollo's `extensions.persistedQuery.sha256Hash`.
 */
function persistedOperationId(params: GraphQLParams, request: Request): string | null {
  let documentId = (params as { documentId?: unknown }).documentId;
  if (documentId === undefined && request.method === "GET") documentId = new URL(request.url).searchParams.get("documentId") ?? undefined;
  if (typeof documentId === "string" && documentId !== "") return documentId.replace(/^sha256:/, "");
  const apq = params.extensions?.persistedQuery as { version?: unknown; sha256Hash?: unknown } | undefined;
  return apq?.version === 1 && typeof apq.sha256Hash === "string" ? apq.sha256Hash : null;
}

interface ServerContext {
  c: Context;
}

/** Content Security Policy of GraphiQL's page (dev only): everything from the page itself, nothing from elsewhere. */
const GRAPHIQL_CSP = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The path a browser posts to: the gateway's prefix and the path below it ("/graphql"), or the path served alone. */
function endpointOf(c: Context | undefined): string {
  if (!c) return "/";
  const prefix = routePrefix(c);
  return prefix ? `${prefix}${c.req.path === "/" ? "" : c.req.path}` : c.req.path;
}

/** Letters, digits, "/", "-", "_", ".", "~" and percent-escapes: nothing a URL pattern reads as syntax. */
const plainPath = /^[\w\-./~%]*$/;

/** The path of a URL as sent, not decoded (Yoga compares its endpoint with the URL as it is). */
function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query === -1 ? undefined : query);
}

/** Servers one graphql() handler makes for distinct paths before the rest share one that takes any path. */
const MAX_ENDPOINTS = 4;

/** A request's operation as Yoga parsed it: an object (a batch's items may be anything). */
const isOperation = (params: unknown) => params !== null && typeof params === "object" && !Array.isArray(params);

function makeServer<T extends object>(
  options: GraphQLOptions<T>,
  env: unknown,
  endpoint: string,
): YogaServerInstance<ServerContext, GraphQLContext & T> {
  const limits: GraphQLLimits = { ...GRAPHQL_LIMITS, ...options.limits };
  const dev = isDevelopment(env);
  const trustedOnly = flag(env, TRUSTED_DOCUMENTS_VAR);
  const persisted = options.persistedOperations ?? {};
  const plugins: Plugin[] = [
    tokenLimit(limits.maxTokens),
    maxDepthPlugin({ n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true, ...armorRejects("query_too_deep") }) as Plugin,
    maxAliasesPlugin({ n: limits.maxAliases, ...armorRejects("too_many_aliases") }) as Plugin,
    maxDirectivesPlugin({ n: limits.maxDirectives, ...armorRejects("too_many_directives") }) as Plugin,
    costLimit(options.schema, limits),
  ];
  if (!dev) plugins.push(blockFieldSuggestionsPlugin() as Plugin);
  if (!dev) plugins.push(useDisableIntrospection());
  if (trustedOnly || Object.keys(persisted).length > 0) {
    const persistedPlugin = usePersistedOperations({
      // Own keys only: "__proto__" or "toString" name no operation.
      getPersistedOperation: (id) => (Object.hasOwn(persisted, id) ? (persisted[id] ?? null) : null),
      allowArbitraryOperations: !trustedOnly,
      extractPersistedOperationId: persistedOperationId,
      customErrors: {
        notFound: {
          message: "No persisted operation has this id",
          extensions: { code: "persisted_operation_not_found", http: { status: 400 } },
        },
        persistedQueryOnly: {
          message: 'Only persisted operations run here: send {"documentId": "<id>"}',
          extensions: { code: "persisted_operations_only", http: { status: 400 } },
        },
        // Neither a query nor an id.
        keyNotFound: {
          message: 'Send a query, or a persisted operation\'s id as "documentId"',
          extensions: { code: "no_query", http: { status: 400 } },
        },
      },
    }) as Plugin;
    // Its hook reads params.query without asking whether params is an object (a batch of [null] failed as an internal
    // error): it is skipped for those, and Yoga's own check refuses them (BAD_REQUEST).
    plugins.push({
      ...persistedPlugin,
      onParams: (payload) => (isOperation(payload.params) ? persistedPlugin.onParams?.(payload) : undefined),
    });
  }
  plugins.push({
    onResultProcess({ result, setResult, serverContext }) {
      const c = (serverContext as Partial<ServerContext>).c;
      const id = c?.get("requestId") ?? "unknown";
      const operation = c ? `${c.req.method} ${c.req.path}` : "request";
      if (Array.isArray(result)) setResult(result.map((r) => withRequestIds(r, id, operation)));
      else if (!(Symbol.asyncIterator in result)) setResult(withRequestIds(result, id, operation));
    },
  });
  return createYoga<ServerContext, GraphQLContext & T>({
    schema: options.schema,
    // The path this server was made for (graphql() below): Yoga then knows its endpoint by comparing strings, where
    // "*" made it parse the URL and test a URLPattern on every request.
    graphqlEndpoint: endpoint,
    landingPage: false,
    // createApp's body limit applies first (64 KiB for the graphql function): Yoga's own limit would pipe the body
    // again through a JavaScript TransformStream, about 100 µs of workerd's CPU per POST.
    maxRequestBodySize: false,
    logging: false,
    batching: limits.maxBatch > 1 ? { limit: limits.maxBatch } : false,
    maskedErrors: { maskError, isDev: dev },
    // Only under npm run dev, whose bundles hold the page (graphiql.ts); elsewhere a browser gets the JSON error.
    graphiql:
      dev && renderGraphiQL ? (_request, context) => ({ endpoint: endpointOf(context?.c), title: options.title ?? "GraphiQL" }) : false,
    ...(renderGraphiQL ? { renderGraphiQL } : {}),
    context: ({ c }) => ({ c, ...(options.context?.(c) as T) }),
    plugins,
  });
}

/** A Hono handler serving `options.schema`, its server made once per worker (per env object). */
export function graphql<T extends object = Record<never, never>>(options: GraphQLOptions<T>): Handler {
  // Hono routed the request here, so its path is the endpoint: one server per path in the request's URL (the path the
  // function sees on its own, or with the gateway's prefix when it runs in the gateway's isolate), a few at most; a
  // handler mounted on a wildcard route shares one matching any path past that.
  const servers = perEnv(() => new Map<string, YogaServerInstance<ServerContext, GraphQLContext & T>>());
  const server = (env: unknown, path: string) => {
    const made = servers(env);
    // Only a plain path names a server: Yoga also reads its endpoint as a URL pattern, where "(" or ":" mean something.
    const endpoint = plainPath.test(path) && (made.has(path) || made.size < MAX_ENDPOINTS) ? path : "*";
    let yoga = made.get(endpoint);
    if (!yoga) made.set(endpoint, (yoga = makeServer(options, env, endpoint)));
    return yoga;
  };
  return async function graphqlHandler(c) {
    const method = c.req.method;
    if (method === "POST" && !isJsonContentType(c.req.header("content-type") ?? "")) {
      // Only JSON: no form or multipart posts (a browser sends those cross-site without asking), as the REST routes.
      throw new ApiError(415, 'Send the operation as JSON with "Content-Type: application/json"', { code: "unsupported_media_type" });
    }
    // HEAD is answered as the GET it stands for, without the body (Hono routes it here with GET).
    const request = method === "HEAD" ? copyRequest(c.req.raw, { method: "GET" }) : c.req.raw;
    const response = await server(c.env, rawPath(request.url)).fetch(request, { c });
    // GraphiQL's page (dev only) runs inline scripts and workers from blobs; the API's own policy allows nothing.
    if (response.headers.get("content-type")?.startsWith("text/html")) c.set("contentSecurityPolicy", GRAPHIQL_CSP);
    return method === "HEAD" ? new Response(null, response) : response;
  };
}
