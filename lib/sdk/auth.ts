/**
 * Authentication and authorization for any function.
 *
 *   app.post("/", requireAuth(), handler)                          a signed-in user (an access token from /auth)
 *   app.post("/", requireAuth({ apiKeysFor: "links" }), handler)   ... or an API key made for the function "links"
 *   app.get("/admin", requireAuth({ roles: ["admin"] }), handler)  only these roles
 *   requireOwner(c, row.owner)                                     in a handler: the owner, or an admin
 *
 * Credentials: `Authorization: Bearer <access token>` (a JWT, see jwt.ts), or an API key as
 * `Authorization: Bearer wyk_...` or `X-Api-Key: wyk_...` (see api-keys.ts; checking one needs
 * `app.use(database())` before the route). No credentials, or credentials that are not valid: 401 with
 * `WWW-Authenticate` (RFC 6750). Valid credentials that may not do this: 403. Both in the one error shape.
 */
import type { Context, MiddlewareHandler } from "hono";
import { timingSafeEqual } from "node:crypto";
import { apiKeyId, API_KEY_PREFIX, hashApiKey } from "./api-keys.ts";
import { db } from "./db.ts";
import { ApiError } from "./errors.ts";
import { InvalidTokenError, jwtEnv, verifyAccessToken } from "./jwt.ts";

export interface Principal {
  kind: "user" | "api_key";
  /** The user's id or the API key's id. */
  id: string;
  role: string;
  /** What ownership is recorded as: "user:<id>" or "key:<id>". */
  subject: string;
}

declare module "hono" {
  interface ContextVariableMap {
    principal: Principal;
  }
}

export interface RequireAuthOptions {
  /** Roles allowed; default any signed-in principal. */
  roles?: string[];
  /** Also accept API keys made for this function (`npm run apikey -- create <function>`). Default: refused. */
  apiKeysFor?: string;
  /** The realm named in WWW-Authenticate. */
  realm?: string;
}

/** A quoted-string for an auth-param (RFC 7235): no quotes or backslashes inside. */
const quoted = (text: string) => `"${text.replace(/["\\]/g, "'")}"`;

function unauthorized(realm: string, message: string, error?: "invalid_token" | "invalid_request"): ApiError {
  const challenge = [`Bearer realm=${quoted(realm)}`];
  if (error) challenge.push(`error=${quoted(error)}`, `error_description=${quoted(message)}`);
  return new ApiError(401, message, { code: error ?? "unauthorized", headers: { "www-authenticate": challenge.join(", ") } });
}

function forbidden(realm: string, message: string): ApiError {
  return new ApiError(403, message, {
    code: "forbidden",
    headers: { "www-authenticate": `Bearer realm=${quoted(realm)}, error="insufficient_scope"` },
  });
}

/** The credential the request carries, if any: a bearer token or an API key. */
function credential(c: Context, realm: string): { kind: "jwt" | "api_key"; value: string } | undefined {
  const header = c.req.header("authorization");
  const apiKey = c.req.header("x-api-key");
  if (header !== undefined && apiKey !== undefined)
    throw unauthorized(realm, "Send one credential: Authorization or X-Api-Key, not both", "invalid_request");
  if (apiKey !== undefined) return { kind: "api_key", value: apiKey.trim() };
  if (header === undefined) return undefined;
  const bearer = /^Bearer +([^\s]+) *$/i.exec(header);
  if (!bearer?.[1]) throw unauthorized(realm, 'The Authorization header must be "Bearer <token>"', "invalid_request");
  const token = bearer[1];
  return { kind: token.startsWith(API_KEY_PREFIX) ? "api_key" : "jwt", value: token };
}

interface ApiKeyRow {
  key_hash: string;
  function: string;
  role: string;
  revoked_at: Date | null;
}

function sameHex(a: string, b: string): boolean {
  const enc = new TextEncoder();
  return a.length === b.length && timingSafeEqual(enc.encode(a), enc.encode(b));
}

async function checkApiKey(c: Context, key: string, forFunction: string | undefined, realm: string): Promise<Principal> {
  if (!forFunction) throw unauthorized(realm, "API keys are not accepted here; sign in and send an access token", "invalid_token");
  const id = apiKeyId(key);
  if (!id) throw unauthorized(realm, "The API key is malformed", "invalid_token");
  const [row] = await db(c)<ApiKeyRow[]>`select key_hash, function, role, revoked_at from auth_api_keys where id = ${id}`;
  const hash = await hashApiKey(key);
  // Compare even when there is no row, so an unknown id costs the same as a wrong secret.
  const matches = sameHex(hash, row?.key_hash ?? "0".repeat(hash.length));
  if (!row || !matches || row.revoked_at !== null)
    throw unauthorized(realm, "The API key is not valid (unknown or revoked)", "invalid_token");
  if (row.function !== forFunction) throw forbidden(realm, `This API key is for the function "${row.function}", not this one`);
  return { kind: "api_key", id, role: row.role, subject: `key:${id}` };
}

/** Who is calling, or a 401 explaining why not. */
export async function authenticate(c: Context, { apiKeysFor, realm = "workyard" }: RequireAuthOptions = {}): Promise<Principal> {
  const cred = credential(c, realm);
  if (!cred) throw unauthorized(realm, "Sign in first: send Authorization: Bearer <access token> (POST /auth/login gives one)");
  if (cred.kind === "api_key") return checkApiKey(c, cred.value, apiKeysFor, realm);
  try {
    const claims = await verifyAccessToken(jwtEnv(c), cred.value);
    return { kind: "user", id: claims.sub, role: claims.role, subject: `user:${claims.sub}` };
  } catch (err) {
    if (err instanceof InvalidTokenError) throw unauthorized(realm, err.message, "invalid_token");
    throw err;
  }
}

/** Middleware: 401 unless the request is authenticated, 403 unless its role is allowed; sets `c.get("principal")`. */
export const requireAuth = (options: RequireAuthOptions = {}): MiddlewareHandler =>
  async function requireAuth(c, next) {
    const principal = await authenticate(c, options);
    if (options.roles && !options.roles.includes(principal.role)) {
      throw forbidden(options.realm ?? "workyard", `This needs the role ${options.roles.map((r) => `"${r}"`).join(" or ")}`);
    }
    c.set("principal", principal);
    await next();
  };

/** In a handler after requireAuth: 403 unless the caller is `owner` or has one of `overrideRoles` (default admin). */
export function requireOwner(c: Context, owner: string | null | undefined, { overrideRoles = ["admin"], realm = "workyard" } = {}): void {
  const principal = c.get("principal");
  if (!principal) throw new Error("requireOwner(c) needs requireAuth() before the route");
  if (principal.subject === owner || overrideRoles.includes(principal.role)) return;
  throw forbidden(realm, "Only the owner (or an admin) may do this");
}
