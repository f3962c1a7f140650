/**
 * Access tokens: short-lived JWTs signed with HS256 (jose) using AUTH_JWT_SECRET, a secret from the environment
 * shared by the auth function, which signs them, and every function that checks them. Verification accepts only
 * HS256 (so `alg: none` and algorithm swaps are refused), only tokens of type `at+jwt` (RFC 9068), and checks
 * issuer, audience, expiry and the subject.
 *
 * Settings (bindings): AUTH_JWT_SECRET (secret, at least 32 characters), AUTH_ISSUER and AUTH_AUDIENCE (vars,
 * default "workyard"), AUTH_ACCESS_TTL_SECONDS (var, default 900).
 */
import { errors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import { nameClasses } from "./class-names.ts";
import { defineEnv } from "./env.ts";

nameClasses(errors);

export const ACCESS_TOKEN_TYPE = "at+jwt";
const ALGORITHM = "HS256";

export const jwtEnv = defineEnv(
  z.object({
    AUTH_JWT_SECRET: z.string().min(32, "must be at least 32 characters (e.g. `openssl rand -base64 48`)"),
    AUTH_ISSUER: z.string().min(1).default("workyard"),
    AUTH_AUDIENCE: z.string().min(1).default("workyard"),
    AUTH_ACCESS_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(30)
      .max(24 * 3600)
      .default(900),
  }),
);
export type JwtSettings = ReturnType<typeof jwtEnv>;

export interface AccessClaims {
  /** The user's id. */
  sub: string;
  role: string;
  /** The login session (refresh token family) the token was issued in. */
  sid: string;
}

const keys = new Map<string, Uint8Array>();
function keyOf(secret: string): Uint8Array {
  let key = keys.get(secret);
  if (!key) keys.set(secret, (key = new TextEncoder().encode(secret)));
  return key;
}

/** Signs an access token for `claims`, valid for AUTH_ACCESS_TTL_SECONDS. */
export function signAccessToken(settings: JwtSettings, claims: AccessClaims): Promise<string> {
  return new SignJWT({ role: claims.role, sid: claims.sid })
    .setProtectedHeader({ alg: ALGORITHM, typ: ACCESS_TOKEN_TYPE })
    .setSubject(claims.sub)
    .setIssuer(settings.AUTH_ISSUER)
    .setAudience(settings.AUTH_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${settings.AUTH_ACCESS_TTL_SECONDS}s`)
    .setJti(crypto.randomUUID())
    .sign(keyOf(settings.AUTH_JWT_SECRET));
}

/** Why a token was refused, in words a client developer can act on. */
export class InvalidTokenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "InvalidTokenError";
  }
}

function explain(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "The access token has expired; get a new one with POST /auth/refresh";
  if (err instanceof errors.JOSEAlgNotAllowed) return `The access token's algorithm is not accepted (only ${ALGORITHM})`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return "The access token's signature is not valid";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "iss" || err.claim === "aud") return "The access token was not issued for this service";
    if (err.claim === "typ") return "The token is not an access token";
    if (err.claim === "nbf" || err.claim === "iat") return "The access token is not valid yet";
    return `The access token's "${err.claim}" claim is not valid`;
  }
  return "The access token is malformed";
}

const claimsSchema = z.object({ sub: z.string().min(1).max(128), role: z.string().min(1).max(32), sid: z.string().max(64).default("") });

/** Verifies an access token and returns its claims, or throws InvalidTokenError saying why. */
export async function verifyAccessToken(settings: JwtSettings, token: string): Promise<AccessClaims> {
  if (token.length > 4096) throw new InvalidTokenError("The access token is too long");
  try {
    const { payload } = await jwtVerify(token, keyOf(settings.AUTH_JWT_SECRET), {
      algorithms: [ALGORITHM],
      typ: ACCESS_TOKEN_TYPE,
      issuer: settings.AUTH_ISSUER,
      audience: settings.AUTH_AUDIENCE,
      requiredClaims: ["sub", "exp", "iat"],
      clockTolerance: 5,
    });
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) throw new InvalidTokenError("The access token's claims are not as expected");
    return claims.data;
  } catch (err) {
    if (err instanceof InvalidTokenError) throw err;
    throw new InvalidTokenError(explain(err), { cause: err });
  }
}
