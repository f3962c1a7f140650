/**
 * Auth for tests: the JWT secret a test stack is started with, access tokens minted the way the auth function
 * signs them (for tests that need a user without signing one up, or a token that is wrong on purpose), and a
 * sign-up through the real auth function.
 */
import { SignJWT } from "jose";

/** A fresh secret per test file: tokens from one run never work in another. */
export const testJwtSecret = () => `test-secret-${crypto.randomUUID()}-${crypto.randomUUID()}`;

export interface MintOptions {
  sub?: string;
  role?: string;
  issuer?: string;
  audience?: string;
  typ?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
}

/** An HS256 access token signed with `secret`, valid unless the options say otherwise. */
export function mintToken(
  secret: string,
  {
    sub = crypto.randomUUID(),
    role = "user",
    issuer = "workyard",
    audience = "workyard",
    typ = "at+jwt",
    expiresIn = 300,
  }: MintOptions = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role, sid: crypto.randomUUID() })
    .setProtectedHeader({ alg: "HS256", typ })
    .setSubject(sub)
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt(expiresIn < 0 ? now + expiresIn - 60 : now)
    .setExpirationTime(now + expiresIn)
    .sign(new TextEncoder().encode(secret));
}

export interface Session {
  accessToken: string;
  refreshToken: string;
  user: { id: string; email: string; role: string };
}

export type SignedUp = Session & { email: string; password: string };

/** Signs up a new account through the running auth function (from `ip`, which the gateway believes from loopback). */
export async function signUp(
  baseUrl: string,
  { email = `u${crypto.randomUUID().slice(0, 12)}@example.com`, password = "correct horse battery", ip = randomIp() } = {},
): Promise<SignedUp> {
  const res = await fetch(`${baseUrl}/auth/signup`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-forwarded-for": ip },
    body: JSON.stringify({ email, password }),
  });
  if (res.status !== 201) throw new Error(`sign-up answered ${res.status}: ${await res.text()}`);
  return { ...((await res.json()) as Session), email, password };
}

/** An address from the benchmarking range (RFC 2544, 198.18.0.0/15) unlikely to share a rate-limit budget with another test. */
export const randomIp = () => `198.18.${Math.floor(Math.random() * 255)}.${Math.floor(Math.random() * 254) + 1}`;

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
