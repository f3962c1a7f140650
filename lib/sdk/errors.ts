/**
 * The one JSON error shape every client sees, from the gateway and from every function:
 *   { "error": { "code": "not_found", "message": "...", "requestId": "...", "issues"?: [...] } }
 * `code` is stable and machine-readable; `message` is for people; `issues` lists field problems.
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface FieldIssue {
  path: string;
  message: string;
}

export interface ErrorBody {
  error: {
    code: string;
    message: string;
    requestId: string;
    issues?: FieldIssue[];
  };
}

const codeByStatus: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  408: "request_timeout",
  409: "conflict",
  410: "gone",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "unprocessable_entity",
  429: "too_many_requests",
  500: "internal_error",
  502: "bad_gateway",
  503: "service_unavailable",
  504: "gateway_timeout",
};

/** The stable `code` for an HTTP status, e.g. 404 → "not_found". */
export function codeForStatus(status: number): string {
  return codeByStatus[status] ?? (status >= 500 ? "internal_error" : "bad_request");
}

/** Builds the error body; `code` defaults to the status's code. */
export function errorBody(
  status: number,
  message: string,
  requestId: string,
  extra: { code?: string; issues?: FieldIssue[] } = {},
): ErrorBody {
  const error: ErrorBody["error"] = { code: extra.code ?? codeForStatus(status), message, requestId };
  if (extra.issues && extra.issues.length > 0) error.issues = extra.issues;
  return { error };
}

/** A JSON error Response, for code that has no Hono context (the gateway). */
export function errorResponse(
  status: number,
  message: string,
  requestId: string,
  init: { code?: string; headers?: Record<string, string> } = {},
): Response {
  return new Response(JSON.stringify(errorBody(status, message, requestId, { code: init.code })), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "x-request-id": requestId, ...init.headers },
  });
}

/**
 * An HTTP outcome a handler throws on purpose: `throw new ApiError(409, "That code is taken", { code: "code_taken" })`.
 * The app's error handler renders it in the standard shape.
 */
export class ApiError extends HTTPException {
  readonly code: string;
  readonly issues: FieldIssue[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: ContentfulStatusCode,
    message: string,
    options: { code?: string; issues?: FieldIssue[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(status, { message, cause: options.cause });
    this.name = "ApiError";
    this.code = options.code ?? codeForStatus(status);
    this.issues = options.issues;
    this.headers = options.headers;
  }
}
