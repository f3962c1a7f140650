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
import { makeLoaders } from "./loaders.ts";
import persistedOperations from "./persisted-operations.json";
import { schema, viewerOf } from "./schema.ts";

// GraphQL documents are small: a larger body is refused before it is parsed.
const app = createApp({ maxBodyBytes: 64 * 1024 });
app.use(database());

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
