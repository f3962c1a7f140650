/**
 * Maps database failures to what a client should see. Connection failures (PostgreSQL or PgBouncer
 * down, refused, timed out) are a 503 with Retry-After; constraint violations are 409/400, data exceptions (a value
 * PostgreSQL cannot take, SQLSTATE class 22) 400; anything
 * else is a plain 500. No SQL, stack or connection string ever reaches the client.
 */
import { ApiError } from "./errors.ts";

const RETRY_AFTER_SECONDS = "5";

// postgres.js connection error codes, Node errnos, and what workerd's sockets say when a peer is gone.
const connectionCodes = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
]);
// SQLSTATE classes: 08 connection exception, 57P01-03 admin shutdown / cannot connect now, 53 resources.
const unavailableStates = /^(08|57P0[1-3]|53)/;

interface MaybePgError {
  code?: unknown;
  message?: unknown;
  name?: unknown;
  constraint_name?: unknown;
}

/**
 * The database client itself could not run: a module it needs did not load or a function it calls is not there (a
 * bundle made for workerd run on Deno: `cloudflare:sockets` is missing, so `connect` is not a function). That is
 * permanent: a 500 with the cause in the log, not a 503 that tells clients to retry.
 */
const missingCode =
  /is not a function|is not a constructor|is not defined|Unsupported scheme|Cannot find module|Failed to (?:load|resolve) module/;
const isMissingCode = (err: unknown) => (err instanceof TypeError || err instanceof ReferenceError) && missingCode.test(err.message);

/** True when the error means the database could not be reached, rather than that a query was wrong. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as MaybePgError;
  const code = typeof e.code === "string" ? e.code : "";
  if (connectionCodes.has(code) || (e.name === "PostgresError" && unavailableStates.test(code))) return true;
  if (e.name === "PostgresError") return false;
  // postgres.js attaches `query` to every error it rejects a query with. One that is not PostgreSQL's answer and
  // carries no postgres.js code of its own (UNDEFINED_VALUE and the like are programming errors) is the socket
  // failing under the query: in workerd a pooled connection whose peer just died says "This WritableStream has
  // been closed" before its close event has been seen.
  if ("query" in e && code === "") return !isMissingCode(err);
  // Nothing else is the database's: an error's message alone ("Network connection lost", "internal error") is said
  // just as well by a request body that broke or an outbound fetch, and a 503 here would report an outage that did
  // not happen.
  return false;
}

/** The ApiError a database error should become, or undefined when it is not a database error. */
export function databaseApiError(err: unknown): ApiError | undefined {
  if (isDatabaseUnavailable(err)) {
    return new ApiError(503, "The database is unavailable; try again shortly", {
      code: "database_unavailable",
      headers: { "retry-after": RETRY_AFTER_SECONDS },
      cause: err,
    });
  }
  const e = err as MaybePgError;
  if (e?.name !== "PostgresError" || typeof e.code !== "string") return undefined;
  // Class 22, data exception: a value the client sent that PostgreSQL cannot take (too long, out of range such as
  // the year 0000, malformed, a NUL in text): the request's fault, never the server's.
  if (e.code.startsWith("22")) {
    return new ApiError(400, "A value is missing, too long or of the wrong form", { code: "invalid_value", cause: err });
  }
  switch (e.code) {
    case "23505":
      return new ApiError(409, "That already exists", { code: "conflict", cause: err });
    case "23503":
      return new ApiError(409, "That refers to something that does not exist, or is still referred to", {
        code: "reference_conflict",
        cause: err,
      });
    case "23502":
    case "23514":
      return new ApiError(400, "A value is missing, too long or of the wrong form", { code: "invalid_value", cause: err });
    case "40001":
    case "40P01":
      return new ApiError(503, "The database was busy; try again", {
        code: "database_busy",
        headers: { "retry-after": "1" },
        cause: err,
      });
    default:
      return undefined;
  }
}
