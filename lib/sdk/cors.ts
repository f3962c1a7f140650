/**
 * CORS from settings: the `CORS_ORIGINS` var (top-level or a function's wrangler.toml) lists the browser origins
 * allowed to call a function, comma-separated, e.g. "https://app.example.com, http://localhost:5173"; "*" allows
 * any origin (fine for an API that uses bearer tokens and no cookies); empty (the default) allows none, so a
 * browser on another origin gets no Access-Control-Allow-Origin and cannot read the answer. createApp installs it.
 */
import type { Context, MiddlewareHandler } from "hono";
import { cors as honoCors } from "hono/cors";

const parsed = new Map<string, Set<string>>();

/** The allowed origins from the CORS_ORIGINS binding (parsed once per distinct value). */
function allowedOrigins(c: Context): Set<string> {
  const raw = (c.env as Record<string, unknown> | undefined)?.CORS_ORIGINS;
  const text = typeof raw === "string" ? raw : "";
  let set = parsed.get(text);
  if (!set) {
    set = new Set(
      text
        .split(",")
        .map((o) => o.trim().replace(/\/+$/, ""))
        .filter((o) => o !== ""),
    );
    parsed.set(text, set);
  }
  return set;
}

/**
 * CORS with the origins from settings; preflights answer 204. Only requests that carry an Origin header (a
 * browser calling from a page) go through Hono's CORS middleware: it reads `c.res` before the handler runs,
 * which makes Hono build a placeholder Response and copy its headers into the handler's, about 20 µs a request
 * inside workerd. Without configured origins nothing is added; a request without Origin gets only
 * `Vary: Origin` (unless any origin is allowed), so that a cache never serves it to a browser on another origin.
 */
export const corsFromSettings = (): MiddlewareHandler => {
  const cors = honoCors({
    origin: (origin, c) => {
      const allowed = allowedOrigins(c);
      if (allowed.has("*")) return "*";
      return allowed.has(origin) ? origin : null;
    },
    allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    allowHeaders: ["Authorization", "Content-Type", "X-Api-Key", "X-Request-Id"],
    exposeHeaders: [
      "X-Request-Id",
      "Location",
      "Retry-After",
      "WWW-Authenticate",
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
    ],
    maxAge: 600,
  });
  return async function corsFromSettings(c, next) {
    const allowed = allowedOrigins(c);
    if (allowed.size === 0) return next();
    if (c.req.header("origin") !== undefined) return cors(c, next);
    await next();
    if (!allowed.has("*")) c.header("Vary", "Origin", { append: true });
  };
};
