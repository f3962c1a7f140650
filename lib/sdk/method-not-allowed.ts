/**
 * Hono answers 404 when a path exists but not for the request's method. This finds the methods a path
 * does answer, so the app can say 405 with an `Allow` header instead.
 */
import type { Hono } from "hono";

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** The methods with a route (not just middleware) registered for `path`; empty when the path is unknown. */
export function allowedMethods(app: Hono<never>, path: string): string[] {
  const allowed: string[] = [];
  for (const method of METHODS) {
    // Handlers registered for exactly this method; middleware (`use`) is registered as "ALL" and is not a route.
    const routeHandlers = new Set(app.routes.filter((r) => r.method === method).map((r) => r.handler));
    if (routeHandlers.size === 0) continue;
    const [matches] = app.router.match(method, path);
    if (matches.some(([entry]) => routeHandlers.has(entry[0] as never))) allowed.push(method);
  }
  if (allowed.includes("GET") && !allowed.includes("HEAD")) allowed.push("HEAD");
  return allowed;
}
