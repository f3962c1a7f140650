/**
 * Calls to auth and links through the function's service bindings ([[services]] in wrangler.toml). Each call carries
 * the browser's request id, its `cf` (the peer's address) and its X-Forwarded-For, so the rate limits per client IP in
 * auth and links count the person behind the page, not the app.
 */
import type { Context } from "hono";
import { z } from "zod";

export interface Service {
  fetch(request: Request): Promise<Response>;
}

export type ServiceName = "AUTH" | "LINKS";

const errorShape = z.object({ error: z.object({ message: z.string(), code: z.string().optional() }) });

/** An error answer from auth or links, with its status and message (shown to the user as it is). */
export class CallError extends Error {
  readonly status: number;
  readonly code: string | undefined;

  constructor(status: number, message: string, code?: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls `path` on auth or links as JSON; resolves to its JSON body, or rejects with a CallError. */
export async function call<T>(
  c: Context,
  service: ServiceName,
  path: string,
  { method = "GET", body, token }: { method?: string; body?: unknown; token?: string | undefined } = {},
): Promise<T> {
  const binding = (c.env as Record<string, Service | undefined>)[service];
  if (!binding) {
    throw new Error(
      `The ${service} service binding is missing: it is declared in functions/app/wrangler.toml [[services]]; under npm run dev, the function it names must build first`,
    );
  }
  const headers = new Headers({ accept: "application/json", "x-request-id": c.get("requestId") });
  if (body !== undefined) headers.set("content-type", "application/json");
  if (token) headers.set("authorization", `Bearer ${token}`);
  // Behind a proxy on this machine the client's address is the last one the proxy appended (client-ip.ts): passed on
  // as it came, it is believed only when the peer in `cf` is that proxy.
  const forwardedFor = c.req.header("x-forwarded-for");
  if (forwardedFor) headers.set("x-forwarded-for", forwardedFor);
  const cf = (c.req.raw as { cf?: Record<string, unknown> }).cf;
  const response = await binding.fetch(
    new Request(`https://${service.toLowerCase()}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(cf ? { cf } : {}),
    }),
  );
  if (response.status === 204) return undefined as T;
  const json: unknown = await response.json().catch(() => undefined);
  if (response.ok) return json as T;
  const failure = errorShape.safeParse(json);
  throw new CallError(
    response.status,
    failure.success ? failure.data.error.message : `${service.toLowerCase()} answered ${response.status}`,
    failure.success ? failure.data.error.code : undefined,
  );
}
