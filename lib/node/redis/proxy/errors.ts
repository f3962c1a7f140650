/** The proxy's error classes: what Redis answered, Redis out of reach, and HTTP outcomes for the client. */

/** An error reply from Redis (or from the in-memory backend speaking for it), e.g. "WRONGTYPE ...". */
export class RedisReplyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RedisReplyError";
  }
}

/** Redis cannot be reached right now (down, restarting, connection lost mid-command). Answered as 503. */
export class BackendUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BackendUnavailableError";
  }
}

/** An HTTP outcome: the status and the message the client gets as `{"error": message}` (shared with the Redis object). */
export { ProxyHttpError } from "../../../shared/redis-protocol.ts";
