/**
 * The internal worker: the platform's own surface, on a socket that listens on loopback only and is never
 * routed from the public one. Every request needs `Authorization: Bearer <WORKYARD_INTERNAL_TOKEN>`.
 *   GET  /healthz                                  liveness of workerd itself
 *   POST /scheduled/<function>?cron=..&scheduledTime=<ms>   runs the function's real scheduled() handler
 * Firing scheduled() through a service binding needs the `service_binding_extra_handlers` compatibility flag
 * on this worker, and workerd started with --experimental.
 */
interface ScheduledTarget {
  scheduled(options: { cron?: string; scheduledTime?: Date }): Promise<{ outcome: string; noRetry: boolean }>;
}

export interface InternalEnv {
  WORKYARD_INTERNAL_TOKEN?: string;
  /** Function name → service binding name. */
  FUNCTIONS: Record<string, string>;
  [binding: string]: unknown;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8" } });
const error = (status: number, code: string, message: string) => json({ error: { code, message } }, status);

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/** Constant-time comparison of the presented token with the expected one (hashed first: equal lengths). */
async function authorized(request: Request, expected: string | undefined): Promise<boolean> {
  if (!expected) return false;
  const presented = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1] ?? "";
  const [a, b] = await Promise.all([digest(presented), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

export default {
  async fetch(request: Request, env: InternalEnv): Promise<Response> {
    if (!(await authorized(request, env.WORKYARD_INTERNAL_TOKEN))) {
      return error(401, "unauthorized", "The internal endpoints need Authorization: Bearer <WORKYARD_INTERNAL_TOKEN>");
    }
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return json({ ok: true });

    const scheduled = /^\/scheduled\/([a-z][a-z0-9-]*)$/.exec(url.pathname);
    if (scheduled) {
      if (request.method !== "POST") return error(405, "method_not_allowed", "Use POST");
      const name = scheduled[1] ?? "";
      const binding = Object.hasOwn(env.FUNCTIONS, name) ? env.FUNCTIONS[name] : undefined;
      const target = binding ? (env[binding] as ScheduledTarget | undefined) : undefined;
      if (!target) return error(404, "not_found", `No function named "${name}"`);
      const time = Number(url.searchParams.get("scheduledTime") ?? Date.now());
      const result = await target.scheduled({ cron: url.searchParams.get("cron") ?? "", scheduledTime: new Date(time) });
      return json({ outcome: result.outcome, noRetry: result.noRetry });
    }
    return error(404, "not_found", "No such internal endpoint");
  },
};
