/**
 * How a client presents the proxy's token (the Upstash REST protocol: a bearer header, or the _token query
 * parameter), and the fast path for the usual header. The general check is common/http.ts's tokenChecker.
 */
import { timingSafeEqual } from "node:crypto";

/** The token a request presents: `Authorization: Bearer <token>`, else the `_token` query parameter. */
export function presentedToken(authorization: string | undefined, url: URL | undefined): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1];
  }
  return url?.searchParams.get("_token") ?? undefined;
}

/**
 * The fast path for the header every client sends as is, `Authorization: Bearer <token>`: one constant-time
 * comparison with a precomputed buffer, no regex and no hashing per request. Only the length can differ
 * in time, and the token's length is not a secret (the proxy makes them all the same length).
 */
export function exactHeaderChecker(expected: string): (authorization: string) => boolean {
  const want = Buffer.from(`Bearer ${expected}`, "utf8");
  return function exactHeader(authorization) {
    const got = Buffer.from(authorization, "utf8");
    return got.length === want.length && timingSafeEqual(got, want);
  };
}
