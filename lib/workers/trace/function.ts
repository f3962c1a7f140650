/**
 * A function's own worker makes its records in its isolate, as the gateway does (capture.ts), instead of being traced
 * to a tail worker: measured on a cached read, the tail cost a fifth of the function's workerd CPU. Every invocation
 * goes through here: requests (through the host object for a function with a database pool, function-host.ts, or
 * straight to the worker), scheduled() runs and queue() deliveries. The records go in batches to the internal worker's
 * trace sink (sink.ts) through a binding its code never sees: the sink knows the collector's token and which function
 * the binding belongs to, so a function can add records only as itself.
 */
import type { TraceRecord } from "./record.ts";
import { capturedParts, capturing, emptyCapture, exceptionOf, printOnly, takeBetween } from "./capture.ts";
import { deliver } from "./sender.ts";
import type { Transport } from "./sender.ts";
import { TRACE_SINK_BINDING } from "../../shared/names.ts";
import { REQUEST_ID_HEADER } from "../../sdk/request-id.ts";

type Env = Record<string, unknown>;
type Waiter = Pick<ExecutionContext, "waitUntil">;

/** The trace sink binding as a function's worker holds it (the internal worker's TraceSink entrypoint). */
interface TraceSink {
  /** A batch of records as JSON (console arguments need not survive structured cloning). */
  deliver(batch: string): Promise<void>;
}

/** What an invocation's records say of it besides what it captured. */
interface Invocation {
  request?: NonNullable<TraceRecord["request"]>;
  cron?: string;
}

const transports = new WeakMap<object, Transport | null>();
const withoutSinks = new WeakMap<object, Env>();

/** How this worker's records reach the sink; undefined when it has none (no collector, or the release is older). */
export function sinkTransport(env: Env): Transport | undefined {
  let send = transports.get(env);
  if (send === undefined) {
    const sink = env[TRACE_SINK_BINDING] as TraceSink | undefined;
    send = sink
      ? async (batch) => {
          try {
            await sink.deliver(JSON.stringify(batch));
          } catch (err) {
            printOnly(`could not deliver ${batch.length} trace record(s) to the internal worker: ${(err as Error).message}`);
          }
        }
      : null;
    transports.set(env, send);
  }
  return send ?? undefined;
}

/** The env the function's code is handed: the worker's own, less the trace sink (one object per env, for caches keyed by it). */
export function withoutSink(env: Env): Env {
  if (!(TRACE_SINK_BINDING in env)) return env;
  let own = withoutSinks.get(env);
  if (!own) {
    const { [TRACE_SINK_BINDING]: _sink, ...rest } = env;
    withoutSinks.set(env, (own = rest));
  }
  return own;
}

/** What a request's record says of it (its status is added when it is answered). */
export const requestOf = (request: Request): NonNullable<TraceRecord["request"]> => ({
  id: request.headers.get(REQUEST_ID_HEADER),
  method: request.method,
  url: request.url,
  status: null,
});

const record = (worker: string, ts: number, outcome: string, of: Invocation, parts: Partial<TraceRecord>): TraceRecord => ({
  worker,
  ts,
  outcome,
  access: [],
  logs: [],
  exceptions: [],
  ...parts,
  ...(of.request ? { request: of.request } : {}),
  ...(of.cron !== undefined ? { cron: of.cron } : {}),
});

/**
 * Runs one invocation's `work` with what it logs and publishes kept apart, and records it: its console lines, an
 * exception it ends with (thrown on after it is recorded), a request's status, what it logs later (waitUntil work,
 * in records of their own).
 */
export async function traceInvocation<T>(
  send: Transport,
  worker: string,
  ctx: Waiter,
  of: Invocation,
  work: () => T | Promise<T>,
): Promise<T> {
  const started = Date.now();
  const before = takeBetween();
  if (before) deliver([record(worker, started, "ok", {}, capturedParts(before))], send, ctx);
  const kept = emptyCapture();
  let outcome = "ok";
  const exceptions: TraceRecord["exceptions"] = [];
  let result: T | undefined;
  try {
    return (result = await capturing(kept, work));
  } catch (err) {
    outcome = "exception";
    exceptions.push(exceptionOf(err));
    throw err;
  } finally {
    const done: Invocation = {
      ...of,
      ...(of.request ? { request: { ...of.request, status: result instanceof Response ? result.status : null } } : {}),
    };
    deliver([record(worker, started, outcome, done, { exceptions, ...capturedParts(kept) })], send, ctx);
    const late: Invocation = done.request ? { request: done.request } : {};
    kept.late = (after) => deliver([record(worker, Date.now(), "ok", late, capturedParts(after))], send, ctx);
  }
}

/**
 * The function's module as its worker's default export, each of its handlers recorded: fetch (a request straight to
 * the worker), scheduled (a cron run) and queue (a delivery). Handlers it does not have stay absent.
 */
export function tracedWorker(handler: ExportedHandler<Env>, worker: string): ExportedHandler<Env> {
  const traced: ExportedHandler<Env> = {};
  const fetch = handler.fetch?.bind(handler);
  const scheduled = handler.scheduled?.bind(handler);
  const queue = handler.queue?.bind(handler);
  if (fetch) {
    traced.fetch = (request, env, ctx) => {
      const send = sinkTransport(env);
      const run = () => fetch(request, withoutSink(env), ctx);
      return send ? traceInvocation(send, worker, ctx, { request: requestOf(request) }, run) : run();
    };
  }
  if (scheduled) {
    traced.scheduled = (controller, env, ctx) => {
      const send = sinkTransport(env);
      const run = () => scheduled(controller, withoutSink(env), ctx);
      return send ? traceInvocation(send, worker, ctx, { cron: controller.cron }, run) : run();
    };
  }
  if (queue) {
    traced.queue = (batch, env, ctx) => {
      const send = sinkTransport(env);
      const run = () => queue(batch, withoutSink(env), ctx);
      return send ? traceInvocation(send, worker, ctx, {}, run) : run();
    };
  }
  return traced;
}
