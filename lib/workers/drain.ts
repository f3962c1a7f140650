/**
 * Draining a workerd process before it is stopped, so that no client sees a failed request.
 *
 * workerd on SIGTERM stops accepting, finishes the requests in flight (answering them with
 * `Connection: close`) and closes every idle keep-alive connection at once. A client that sends its next
 * request on such a connection just as it closes gets a connection error (measured: ~10 failed POSTs per
 * SIGTERM under a busy keep-alive load). A worker cannot set `Connection: close` itself (workerd drops it).
 *
 * So the supervisor first asks the old process to drain for `holdMs`: from then on the gateway holds each new
 * request until that moment, and the supervisor sends SIGTERM shortly before it. Every busy connection then
 * has a request in flight when SIGTERM arrives, which workerd finishes with `Connection: close`, and the
 * client reconnects (to a new process). Requests on the old process wait at most `holdMs`; if SIGTERM never
 * comes, the process simply goes back to serving.
 */
import { INTERNAL_PATHS } from "../shared/names.ts";

/** Until when (epoch ms) new requests are held; 0 when not draining. */
let holdUntil = 0;

/** A promise to await before serving when this process is draining; undefined otherwise (the usual case). */
export function holdWhileDraining(): Promise<void> | undefined {
  if (holdUntil === 0) return undefined;
  const wait = holdUntil - Date.now();
  if (wait <= 0) return undefined;
  return new Promise((resolve) => setTimeout(resolve, wait));
}

/** The longest hold the control entrypoint accepts. */
export const MAX_HOLD_MS = 30_000;

/**
 * The gateway's `control` entrypoint, reached only through the internal worker's service binding (never from
 * the public socket): `POST /drain?holdMs=N` starts holding requests for N ms.
 */
export const drainControl = {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const holdMs = Number(url.searchParams.get("holdMs"));
    if (
      request.method !== "POST" ||
      url.pathname !== INTERNAL_PATHS.drain ||
      !Number.isInteger(holdMs) ||
      holdMs < 0 ||
      holdMs > MAX_HOLD_MS
    ) {
      return new Response(JSON.stringify({ error: { code: "invalid_input", message: `POST /drain?holdMs=<0..${MAX_HOLD_MS}>` } }), {
        status: 400,
        headers: { "content-type": "application/json; charset=utf-8" },
      });
    }
    holdUntil = Date.now() + holdMs;
    return new Response(JSON.stringify({ ok: true, holdUntil }), { headers: { "content-type": "application/json; charset=utf-8" } });
  },
};
