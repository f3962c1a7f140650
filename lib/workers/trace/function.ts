/**
 * A function's own worker makes its records in its isolate, as the gateway does (capture.ts), instead of being traced
 * to a tail worker: measured on a cached read, the tail cost a fifth of the function's workerd CPU. Every invocation
 * goes through here: requests (through the host object for a function with a database pool, function-host.ts, or
 * straight to the worker), scheduled() runs and queue() deliveries. The records go in batches to the internal worker's
 * trace sink (sink.ts) through a binding its code never sees: the sink knows the collector's token and which function
 * the binding belongs to, so a function can add records only as itself.
 */
import type { TraceRecord } from "./record.ts";
import { capturedParts, capturing, emptyCapture, exceptionOf, printOnly, recordMade, takeBetween } from "./capture.ts";
import type { Captured } from "./capture.ts";
import { deliver, lateRecorder, record } from "./sender.ts";
import type { Invocation, Transport } from "./sender.ts";
import { TRACE_SINK_BINDING } from "../../shared/names.ts";
import { REQUEST_ID_HEADER } from "../../sdk/request-id.ts";

type Env = Record<string, unknown>;
type Waiter = Pick<ExecutionContext, "waitUntil">;

/** The trace sink binding as a function's worker holds it (the internal worker's TraceSink entrypoint). */
interface TraceSink {
  /** A batch of records as JSON (console arguments need not survive structured cloning). */
  deliver(batch: string): Promise<void>;
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

/** How long each kind of invocation may run (the gateway's deadline, cron_timeout_ms, queue_timeout_ms), in ms. */
export interface Deadlines {
  fetch: number;
  scheduled: number;
  queue: number;
}

/** An invocation under way, and what is needed to record it for it if it never ends. */
interface Open {
  worker: string;
  started: number;
  of: Invocation;
  kept: Captured;
  send: Transport;
  /** Past this (ms since the epoch), it is taken as cancelled: its caller gave up on it, and workerd stopped it. */
  abandonAt: number;
  swept: boolean;
}

/** What it waits past its deadline before an invocation is taken as cancelled. */
const GRACE_MS = 1000;
const open = new Set<Open>();

/**
 * Records the invocations that outlived their deadline as cancelled, with what they logged so far. workerd stops an
 * invocation its caller gave up on (the gateway's 504) without running its `finally`: only another invocation of this
 * isolate can record it, so each one looks when it starts.
 */
function sweep(ctx: Waiter, now: number): void {
  for (const o of open) {
    if (now < o.abandonAt) continue;
    open.delete(o);
    o.swept = true;
    deliver([record(o.worker, o.started, "canceled", o.of, capturedParts(o.kept))], o.send, ctx);
    recordMade(o.kept, lateRecorder(o.worker, o.of, o.send, ctx));
  }
}

/**
 * `ctx` with a `waitUntil` that records what the promises it is handed reject with (they are still rejected, as
 * workerd reports them): an exception there belongs to the invocation as much as one its handler throws.
 */
function recordingContext<C extends Waiter>(ctx: C, report: (err: unknown) => void): C {
  return new Proxy(ctx, {
    get(target, key) {
      if (key === "waitUntil")
        return (promise: Promise<unknown>) =>
          target.waitUntil(
            Promise.resolve(promise).catch((err: unknown) => {
              report(err);
              throw err;
            }),
          );
      const value: unknown = Reflect.get(target, key);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * Runs one invocation's `work` with what it logs and publishes kept apart, and records it: its console lines, an
 * exception it ends with (thrown on after it is recorded) or that a promise handed to waitUntil rejects with, a
 * request's status, what it logs later (waitUntil work, in records of their own), and, if it is cancelled past its
 * deadline, what it logged until then (recorded by the next invocation, see sweep).
 */
export async function traceInvocation<T, C extends Waiter>(
  send: Transport,
  worker: string,
  ctx: C,
  of: Invocation,
  deadlineMs: number,
  work: (ctx: C) => T | Promise<T>,
): Promise<T> {
  const started = Date.now();
  sweep(ctx, started);
  const before = takeBetween();
  if (before) deliver([record(worker, started, "ok", {}, capturedParts(before))], send, ctx);
  const kept = emptyCapture();
  const self: Open = { worker, started, of, kept, send, abandonAt: started + deadlineMs + GRACE_MS, swept: false };
  open.add(self);
  let outcome = "ok";
  const exceptions: TraceRecord["exceptions"] = [];
  let recorded: Invocation | undefined;
  const report = (err: unknown) => {
    if (!recorded) exceptions.push(exceptionOf(err));
    else
      deliver(
        [
          record(worker, Date.now(), "exception", recorded.request ? { request: recorded.request } : {}, {
            exceptions: [exceptionOf(err)],
          }),
        ],
        send,
        ctx,
      );
  };
  let result: T | undefined;
  try {
    return (result = await capturing(kept, () => work(recordingContext(ctx, report))));
  } catch (err) {
    outcome = "exception";
    exceptions.push(exceptionOf(err));
    throw err;
  } finally {
    open.delete(self);
    recorded = {
      ...of,
      ...(of.request ? { request: { ...of.request, status: result instanceof Response ? result.status : null } } : {}),
    };
    if (!self.swept) {
      deliver([record(worker, started, outcome, recorded, { exceptions, ...capturedParts(kept) })], send, ctx);
      recordMade(kept, lateRecorder(worker, recorded, send, ctx));
    } else if (exceptions.length > 0) {
      // Recorded as cancelled already (it ran past its deadline): only what it ended with is new.
      deliver([record(worker, Date.now(), outcome, recorded.request ? { request: recorded.request } : {}, { exceptions })], send, ctx);
    }
  }
}

type Handler = ExportedHandler<Env>;
type HandlerClass = new (ctx: ExecutionContext, env: Env) => Handler;
/** A handler the platform calls, by its first argument (a request, a cron's controller, a batch). */
type AnyHandler = (first: unknown, env: Env, ctx: ExecutionContext) => unknown;
type Kind = keyof Deadlines;

/** What each kind of invocation's record says of it, from the handler's first argument. */
const invocationOf: Record<Kind, (first: unknown) => Invocation> = {
  fetch: (request) => ({ request: requestOf(request as Request) }),
  scheduled: (controller) => ({ cron: (controller as ScheduledController).cron }),
  queue: () => ({}),
};
const KINDS = Object.keys(invocationOf) as Kind[];

/**
 * The function's module as its worker's default export, each of its handlers recorded: fetch (a request straight to
 * the worker), scheduled (a cron run) and queue (a delivery). Handlers it does not have stay absent, and so do the
 * kinds of handler the platform does not call. A class (a WorkerEntrypoint) gets a subclass that records the same.
 */
export function tracedWorker(handler: Handler | HandlerClass, worker: string, deadlines: Deadlines): Handler | HandlerClass {
  if (typeof handler === "function") return tracedClass(handler, worker, deadlines);
  const traced: Partial<Record<Kind, AnyHandler>> = {};
  for (const kind of KINDS) {
    const own = (handler as Partial<Record<Kind, AnyHandler>>)[kind]?.bind(handler);
    if (!own) continue;
    traced[kind] = (first, env, ctx) => {
      const send = sinkTransport(env);
      const run = (c: ExecutionContext) => own(first, withoutSink(env), c);
      return send ? traceInvocation(send, worker, ctx, invocationOf[kind](first), deadlines[kind], run) : run(ctx);
    };
  }
  return traced as Handler;
}

/** A class default export's subclass: the code gets the env without the sink, and each handler it has is recorded. */
function tracedClass(Base: HandlerClass, worker: string, deadlines: Deadlines): HandlerClass {
  class Traced extends Base {
    readonly #send: Transport | undefined;
    readonly #ctx: ExecutionContext;
    constructor(ctx: ExecutionContext, env: Env) {
      super(ctx, withoutSink(env));
      this.#send = sinkTransport(env);
      this.#ctx = ctx;
    }
    /** Runs a handler of the base class, recorded (its `this.ctx.waitUntil` is the worker's own: not watched). */
    run<T>(of: Invocation, deadlineMs: number, work: () => T | Promise<T>): T | Promise<T> {
      return this.#send ? traceInvocation(this.#send, worker, this.#ctx, of, deadlineMs, () => work()) : work();
    }
  }
  const proto = Base.prototype as Partial<Record<Kind, (first: unknown) => unknown>>;
  for (const kind of KINDS) {
    const own = proto[kind];
    if (!own) continue;
    (Traced.prototype as Partial<Record<Kind, unknown>>)[kind] = function (this: Traced, first: unknown) {
      return this.run(invocationOf[kind](first), deadlines[kind], () => own.call(this, first));
    };
  }
  return Traced;
}
