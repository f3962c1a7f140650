/**
 * What a GraphQL client learns when something goes wrong: an error a resolver means (an ApiError: 401, 403, 404,
 * 409, 429, invalid input) keeps its message and gets its stable code; anything else becomes "Internal error", logged
 * with its stack and the request id, and nothing of it (no stack, no SQL) reaches the client. Every error carries
 * the request id, as the REST error shape does.
 */
import { GraphQLError } from "graphql";
import type { GraphQLErrorExtensions } from "graphql";
import type { ExecutionResult } from "graphql";
import { databaseApiError } from "../db-errors.ts";
import { errorDetails } from "../error-details.ts";
import { ApiError } from "../errors.ts";
import { queueApiError } from "../queue-errors.ts";

/** The extension code of an error the server did not mean. */
export const INTERNAL_ERROR_CODE = "internal_error";

/**
 * A GraphQLError, also one made by another copy of graphql-js than ours (a dependency that bundles its own): the
 * class check alone would mask a client's syntax error as an internal one.
 */
const isGraphQLError = (err: unknown): err is GraphQLError =>
  err instanceof GraphQLError || (err instanceof Error && err.name === "GraphQLError");

/** An error raised before or outside execution by graphql-js or Yoga (parse, validation, a limit): shown as it is. */
const isRequestError = (err: GraphQLError) => err.originalError === undefined || err.originalError === null;

/** The ApiError behind a resolver's failure: its own, or what a database or queue failure means for the client. */
function apiErrorOf(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  return databaseApiError(err) ?? queueApiError(err);
}

/**
 * Yoga's maskError: a resolver's ApiError keeps its message and code; a request error stays; the rest is masked.
 * The masked error keeps its cause (never serialized) so that `withRequestIds` can log it with the request id.
 */
export function maskError(error: unknown, _message: string, isDev = false): Error {
  const graphqlError = isGraphQLError(error) ? error : undefined;
  if (graphqlError && isRequestError(graphqlError)) return graphqlError;
  const cause = graphqlError?.originalError ?? error;
  if (isGraphQLError(cause)) return cause; // thrown on purpose by a resolver, with its own extensions
  // JSON that does not parse in a GET's variables or extensions (Yoga's parser throws it as it is): the client's.
  if (cause instanceof SyntaxError && !graphqlError?.path) {
    return new GraphQLError("The variables or extensions are not valid JSON", {
      extensions: { code: "BAD_REQUEST", http: { status: 400 } },
    });
  }
  const api = apiErrorOf(cause);
  const options = { nodes: graphqlError?.nodes, path: graphqlError?.path };
  if (api) {
    const extensions: GraphQLErrorExtensions = { code: api.code, status: api.status };
    if (api.issues && api.issues.length > 0) extensions.issues = api.issues;
    if (api.headers?.["retry-after"]) extensions.retryAfter = Number(api.headers["retry-after"]);
    if (api !== cause) console.error("database or queue error in a GraphQL resolver", errorDetails(cause));
    return new GraphQLError(api.message, { ...options, extensions });
  }
  const message = isDev && cause instanceof Error ? `Internal error: ${cause.message}` : "Internal error";
  return new GraphQLError(message, { ...options, originalError: cause as Error, extensions: { code: INTERNAL_ERROR_CODE } });
}

/** Adds the request id to each error of a result; logs the causes of internal errors with it. */
export function withRequestIds(result: ExecutionResult, requestId: string, operation: string): ExecutionResult {
  if (!result.errors || result.errors.length === 0) return result;
  const errors = result.errors.map((err) => {
    if (err.extensions.code === INTERNAL_ERROR_CODE && err.originalError) {
      console.error(
        `unhandled error in GraphQL ${operation} at ${err.path?.join(".") ?? "(request)"} [${requestId}]`,
        errorDetails(err.originalError),
      );
    }
    // Yoga puts the cause of some request errors (a JSON SyntaxError) in the extensions: nothing of it is shown.
    const { originalError: _cause, ...extensions } = err.extensions as Record<string, unknown>;
    return new GraphQLError(err.message, {
      nodes: err.nodes,
      source: err.source,
      positions: err.positions,
      path: err.path,
      extensions: { ...extensions, requestId },
    });
  });
  return { ...result, errors };
}
