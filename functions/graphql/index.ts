/**
 * graphql: the links and the signed-in user as one GraphQL schema (schema.ts), beside the REST functions and with
 * their rules. GraphQL Yoga through #workyard/graphql: hostile queries are refused before they cost anything, errors
 * are masked and carry the request id, related rows are read in batches (loaders.ts), persisted operations are
 * served from persisted-operations.json (only those, when GRAPHQL_TRUSTED_DOCUMENTS_ONLY = true).
 *   POST /   {"query": "...", "variables": {...}}  or  {"documentId": "<id>"}
 *   GET  /?query=...                               queries only (never mutations); GraphiQL under npm run dev
 */
import { createApp } from "#workyard/app";
import { database } from "#workyard/db";
import { graphql } from "#workyard/graphql";
import { createRoute, errorResponses, jsonBody, jsonResponse, z } from "#workyard/openapi";
import { makeLoaders } from "./loaders.ts";
import persistedOperations from "./persisted-operations.json" with { type: "json" };
import { schema, viewerOf } from "./schema.ts";

// GraphQL documents are small: a larger body is refused before it is parsed.
const app = createApp({
  maxBodyBytes: 64 * 1024,
  api: { title: "graphql", description: "The links and the signed-in user as one GraphQL schema (docs/graphql.md)." },
});
app.use(database());

// In the OpenAPI document for the docs page and "Try it"; Yoga checks the request itself (GraphQL errors, not the
// REST error shape), so these are documented without createApp's input checks.
const EXAMPLE_QUERY = "{ links(first: 3) { code url clicks createdAt } }";
const answer = jsonResponse(
  z.object({
    data: z.record(z.string(), z.unknown()).nullable().optional(),
    errors: z
      .array(z.object({ message: z.string(), extensions: z.object({ code: z.string(), requestId: z.string() }).loose() }).loose())
      .optional(),
  }),
  "The result: data, and errors each with a stable extensions.code and the request id (a request refused before it " +
    "runs has no data and, with Accept: application/graphql-response+json, the status 400)",
  { data: { links: [] } },
);
const variables = z.string().optional().openapi({ description: "The variables, as a JSON object", example: "{}" });
for (const method of ["post", "get"] as const) {
  app.openAPIRegistry.registerPath(
    createRoute({
      method,
      path: "/",
      tags: ["graphql"],
      summary: method === "post" ? "Run a GraphQL operation" : "Run a GraphQL query (not a mutation) from the query string",
      description: "Send a query, or a persisted operation's documentId (sha256: and the id). Signed in for me and the mutations.",
      request:
        method === "post"
          ? {
              body: jsonBody(
                z.object({
                  query: z.string().optional(),
                  variables: z.record(z.string(), z.unknown()).optional(),
                  operationName: z.string().optional(),
                  documentId: z.string().optional(),
                }),
                { query: EXAMPLE_QUERY },
              ),
            }
          : {
              query: z.object({
                query: z.string().optional().openapi({ example: EXAMPLE_QUERY }),
                variables,
                operationName: z.string().optional(),
                documentId: z.string().optional(),
              }),
            },
      responses: { 200: answer, ...errorResponses({ 413: "The body is larger than 64 KiB" }) },
    }),
  );
}

app.on(
  ["GET", "POST"],
  "/",
  graphql({
    schema,
    context: (c) => ({ loaders: makeLoaders(c), viewer: viewerOf(c) }),
    persistedOperations,
    title: "workyard GraphQL",
  }),
);

export default app;
