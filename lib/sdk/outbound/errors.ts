/**
 * What a call through `outbound()` throws when the upstream could not give an answer: an ApiError, so that a handler
 * that lets it through answers the client in the standard shape (503 with Retry-After while the breaker is open or
 * the bulkhead is full, 504 after a timeout, 502 when the upstream could not be reached), and a handler that wants
 * to do something else catches `UpstreamError` and reads `kind`.
 */
import { ApiError } from "../errors.ts";

export type UpstreamErrorKind = "open" | "busy" | "timeout" | "failed";

const STATUS = { open: 503, busy: 503, timeout: 504, failed: 502 } as const;
const CODE = { open: "upstream_unavailable", busy: "upstream_busy", timeout: "upstream_timeout", failed: "upstream_failed" } as const;

export class UpstreamError extends ApiError {
  readonly upstream: string;
  readonly kind: UpstreamErrorKind;
  /** While the breaker is open or the bulkhead full: when a try may succeed again (ms). */
  readonly retryAfterMs: number | undefined;

  constructor(upstream: string, kind: UpstreamErrorKind, message: string, options: { retryAfterMs?: number; cause?: unknown } = {}) {
    const retryAfter = options.retryAfterMs === undefined ? undefined : String(Math.max(1, Math.ceil(options.retryAfterMs / 1000)));
    super(STATUS[kind], message, {
      code: CODE[kind],
      cause: options.cause,
      ...(retryAfter ? { headers: { "retry-after": retryAfter } } : {}),
    });
    this.name = "UpstreamError";
    this.upstream = upstream;
    this.kind = kind;
    this.retryAfterMs = options.retryAfterMs;
  }
}
