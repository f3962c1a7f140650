/**
 * The session: auth's tokens kept in two HttpOnly cookies that this function sets and reads, never in the page's
 * JavaScript (no localStorage, no token in the state it renders). A script injected into the page could call the
 * app's own endpoints while the page is open, but it cannot read a token to take away and use elsewhere; the
 * refresh token, which lives for weeks, is only ever sent to this function.
 *   - SameSite=Lax: sent on top-level visits from elsewhere (a link in an email opens the signed-in page) and never
 *     on another site's form posts or fetches; unsafe methods are also checked by Origin / Sec-Fetch-Site (index.ts).
 *   - Secure when the request came over HTTPS (directly, or through Caddy's X-Forwarded-Proto), so signing in still
 *     works on plain http://127.0.0.1 in development.
 *   - Path=/app (where the function is served): the other functions never receive them.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { routePrefix } from "#workyard/route";
import { call, CallError } from "./calls.ts";
import type { User } from "../src/state.ts";

export const ACCESS_COOKIE = "wy_access";
export const REFRESH_COOKIE = "wy_refresh";
/** An access token this close to its expiry is refreshed first, so that it does not expire on its way. */
const REFRESH_AHEAD_SECONDS = 30;

/** What auth answers to a sign-up, a sign-in and a refresh. */
export interface Tokens {
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
  user?: User;
}

/** True when the request came over HTTPS (directly, or through a proxy on this machine that says so). */
const overHttps = (c: Context) => c.req.url.startsWith("https:") || c.req.header("x-forwarded-proto") === "https";

/**
 * Where the function is served: the gateway's prefix ("/app"), or "" on a domain of its own (Cloudflare, wrangler dev).
 * Only a plain function name is taken (it goes into the page's <base> and the cookies' Path).
 */
export function servedAt(c: Context): string {
  const prefix = routePrefix(c);
  return /^\/[a-z][a-z0-9-]{0,62}$/.test(prefix) ? prefix : "";
}

const cookiePath = (c: Context) => servedAt(c) || "/";

/** The app's cookies' attributes (for setting, and for deleting with maxAge 0). */
export function cookieOptions(c: Context, maxAge: number) {
  return { path: cookiePath(c), httpOnly: true, sameSite: "Lax", secure: overHttps(c), maxAge } as const;
}

/** Keeps a new pair of tokens in the cookies. */
export function keepTokens(c: Context, tokens: Tokens): void {
  setCookie(c, ACCESS_COOKIE, tokens.accessToken, cookieOptions(c, tokens.expiresIn));
  setCookie(c, REFRESH_COOKIE, tokens.refreshToken, cookieOptions(c, tokens.refreshExpiresIn));
}

/** Clears both token cookies (signed out, or a session auth no longer accepts). */
export function forgetTokens(c: Context): void {
  // With the attributes they were set with: some clients (curl) keep an HttpOnly cookie a plain one would replace.
  for (const name of [ACCESS_COOKIE, REFRESH_COOKIE]) deleteCookie(c, name, cookieOptions(c, 0));
}

/** Seconds until the JWT's `exp`, read without checking its signature (auth and links check it); NaN if unreadable. */
function secondsLeft(jwt: string): number {
  try {
    const payload = jwt.split(".")[1] ?? "";
    const json = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/"))) as { exp?: unknown };
    return typeof json.exp === "number" ? json.exp - Date.now() / 1000 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * An access token for this request: the cookie's while it is fresh, else a new one from auth's /refresh (kept in the
 * cookies); undefined when signed out or when the session ended (its cookies are cleared).
 */
export function accessToken(c: Context): Promise<string | undefined> {
  // Once per request: a second refresh would present the refresh token the first one replaced, which ends the session.
  let token = tokens.get(c.req.raw);
  if (!token) tokens.set(c.req.raw, (token = currentToken(c)));
  return token;
}

const tokens = new WeakMap<Request, Promise<string | undefined>>();

/** A JWT's shape: three base64url parts. Anything else in the cookie is not a token (and never goes into a header). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

async function currentToken(c: Context): Promise<string | undefined> {
  const cookie = getCookie(c, ACCESS_COOKIE);
  const access = cookie && JWT_SHAPE.test(cookie) ? cookie : undefined;
  if (access && secondsLeft(access) > REFRESH_AHEAD_SECONDS) return access;
  const refreshToken = getCookie(c, REFRESH_COOKIE);
  if (!refreshToken) return undefined;
  try {
    const fresh = await call<Tokens>(c, "AUTH", "/refresh", { method: "POST", body: { refreshToken } });
    keepTokens(c, fresh);
    return fresh.accessToken;
  } catch (err) {
    if (err instanceof CallError && (err.status === 401 || err.status === 400)) {
      forgetTokens(c);
      return undefined;
    }
    throw err;
  }
}

/** Ends the session at auth (the refresh token stops working) and clears the cookies. */
export async function endSession(c: Context): Promise<void> {
  const refreshToken = getCookie(c, REFRESH_COOKIE);
  forgetTokens(c);
  if (!refreshToken) return;
  await call(c, "AUTH", "/logout", { method: "POST", body: { refreshToken } }).catch((err: unknown) => {
    // Already ended or unknown: the cookies are gone either way.
    if (!(err instanceof CallError && err.status < 500)) throw err;
  });
}
