/**
 * Bearer token check. Both sides are hashed first so that timingSafeEqual compares equal lengths and the
 * comparison time says nothing about the token's length or content.
 */
import { createHash, timingSafeEqual } from "node:crypto";

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** The token a request presents: `Authorization: Bearer <token>`, else the `_token` query parameter. */
export function presentedToken(authorization: string | undefined, url: URL | undefined): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1];
  }
  return url?.searchParams.get("_token") ?? undefined;
}

/** Returns a checker that tells whether a presented token is the expected one, in constant time. */
export function tokenChecker(expected: string): (presented: string | undefined) => boolean {
  const want = digest(expected);
  return function checkToken(presented) {
    if (presented === undefined) return false;
    return timingSafeEqual(digest(presented), want);
  };
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
