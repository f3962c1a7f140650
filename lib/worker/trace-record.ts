/**
 * What the tail worker sends the collector for one traced invocation: the parts of workerd's TraceItem
 * the platform uses, small and JSON-safe. Shared by the tail worker (which builds them) and the collector
 * (which validates them with a zod schema of the same shape).
 */

/** The gateway's record of one request, published on the `workyard.access` diagnostics channel. */
export interface AccessRecord {
  /** Request id (x-request-id). */
  id: string;
  /** The routed function, or null when the path named none. */
  fn: string | null;
  method: string;
  path: string;
  status: number;
  /** Milliseconds until the response headers (workerd's clock advances across I/O only). */
  ms: number;
  ip: string;
  /** Requests in flight for `fn` in this workerd process when this one started (itself included). */
  inflight: number;
  /** A random id of the workerd process (isolate) that served it: in-flight samples are summed across them. */
  proc: string;
}

export const ACCESS_CHANNEL = "workyard.access";

export interface TraceRecord {
  /** Which worker was traced: a function's name, or "gateway". */
  worker: string;
  /** When the invocation started (ms since the epoch). */
  ts: number;
  outcome: string;
  /** For a fetch: the request id the gateway set, and the response status (absent when it threw). */
  request?: { id: string | null; method: string; url: string; status: number | null };
  /** For a scheduled() run. */
  cron?: string;
  access: AccessRecord[];
  logs: { ts: number; level: string; message: unknown[] }[];
  exceptions: { ts: number; name: string; message: string; stack: string }[];
}
