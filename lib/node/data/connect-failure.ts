/**
 * A database that cannot be reached or will not let us in (nothing listening, an unknown host, a wrong password,
 * no such database) is the operator's to fix: commands print the driver's message, not a stack.
 */
import { asUserError } from "../common/user-error.ts";

/** Node's socket errors and postgres.js's connect timeout and closed connections. */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
]);
/** PostgreSQL's classes 08 (connection exception) and 28 (authorization), no such database, too many connections, shutting down or starting. */
const SQLSTATES = /^(08|28)...$|^(3D000|53300|57P0[1-3])$/;

/** True when `err` says the database could not be reached or refused the login. */
export function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" && (SOCKET_CODES.has(code) || SQLSTATES.test(code));
}

/** `err` as an operator's mistake (the same message) when it is a connection failure; anything else as it is. */
export function connectFailure(err: unknown): unknown {
  return isConnectFailure(err) ? asUserError(err) : err;
}
