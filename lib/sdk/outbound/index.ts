/**
 * Calls to outside services with a timeout, retries, a circuit breaker, a bulkhead and failover, declared once per
 * upstream and shared by every isolate that uses the same Redis:
 *
 *   const res = await outbound(c, "payments", (signal, upstream) => upstream.fetch("/charges", { method: "POST", body }));
 *
 * The policy of "payments" comes from `defineUpstreams({ payments: {...} })` in code and from
 * `[workyard.upstreams.payments]` in the function's wrangler.toml (the file wins, key by key; lib/shared/upstream-policy.ts
 * lists the keys and their defaults). Each try gets its own AbortSignal, aborted at timeout_ms. A try fails when it
 * throws, times out, or answers a Response with status 5xx, 408 or 429; any other result is a success.
 *
 * Retries (exponential backoff with jitter, cockatiel's) only for a call known to be idempotent: every request it made
 * through `upstream.fetch` used GET, HEAD, OPTIONS, PUT or DELETE, or the call says `{ idempotent: true }`, or the
 * policy says retry_non_idempotent. A call that may have reached the upstream is failed over on the same terms; one
 * refused before it was sent (breaker open, bulkhead full) always is.
 *
 * When no try succeeds: the options' fallback gives the answer if there is one; else a failing Response is returned
 * as the upstream gave it, and anything else throws an UpstreamError (503 + Retry-After while the breaker is open).
 */
import {
  bulkhead,
  BulkheadRejectedError,
  ExponentialBackoff,
  handleWhen,
  retry,
  TaskCancelledError,
  timeout,
  TimeoutStrategy,
} from "cockatiel";
import type { BulkheadPolicy, TimeoutPolicy } from "cockatiel";
import { perEnv } from "../env.ts";
import { redisFromEnv } from "../redis.ts";
import { failoverChain, UPSTREAM_NAME, upstreamPolicy, UPSTREAMS_VAR, upstreamTablesSchema } from "../../shared/upstream-policy.ts";
import type { UpstreamPolicy, UpstreamSettings } from "../../shared/upstream-policy.ts";
import type { Admission } from "./breaker.ts";
import { Breaker, STORE_TIMEOUT_MS } from "./breaker.ts";
import type { BreakerState, TryOutcome } from "../../shared/outbound-event.ts";
import { UpstreamError } from "./errors.ts";
import { MemoryStore } from "./memory-store.ts";
import { publish } from "./report.ts";
import { RedisStore } from "./redis-store.ts";
import type { BreakerStore } from "./store.ts";

export { UpstreamError } from "./errors.ts";
export type { UpstreamErrorKind } from "./errors.ts";
export type { UpstreamSettings } from "../../shared/upstream-policy.ts";

/** What a try is given besides its signal. */
export interface Upstream {
  /** The upstream this try goes to: the one called, or the one it fails over to. */
  name: string;
  /** Its `url` setting, if it has one. */
  url: string | undefined;
  /** 1 for the first try, 2 for the first retry ... */
  attempt: number;
  /**
   * `fetch` with this try's signal, a path resolved against `url`, and its method noted (so that the helper knows
   * whether the call may be retried).
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
}

export interface CallOptions<T> {
  /** The call may be retried and failed over whatever methods it uses (the upstream drops duplicates). */
  idempotent?: boolean;
  /** The answer when no try succeeded (breaker open, timeouts, failures): a cached value, a default, a degraded answer. */
  fallback?: (error: UpstreamError) => T | Promise<T>;
}

/** Anything with the function's bindings: a Hono context, or `{ env }` in queue() and scheduled(). */
export interface OutboundContext {
  env: unknown;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

/** Upstreams declared in code (this bundle's), over which the wrangler.toml tables go. */
const declared: Record<string, UpstreamSettings> = {};

/**
 * Declares upstreams in code: `defineUpstreams({ payments: { timeout_ms: 2000, failover: "payments-eu" } })`, at module
 * scope. The same keys as `[workyard.upstreams.<name>]` in wrangler.toml, whose values win.
 */
export function defineUpstreams(upstreams: Record<string, UpstreamSettings>): void {
  const parsed = upstreamTablesSchema.safeParse(upstreams);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${i.path.map(String).join(".")}: ${i.message}`);
    throw new Error(`defineUpstreams(): these settings cannot be used:\n${lines.join("\n")}`);
  }
  for (const [name, settings] of Object.entries(parsed.data)) declared[name] = { ...declared[name], ...settings };
}

/** Breaker records of this isolate (for upstreams not shared, and while Redis does not answer). */
const localStore = new MemoryStore();

/** The [workyard.upstreams] tables of the function's wrangler.toml files, as the build passed them on. */
function fileTables(env: unknown): Record<string, UpstreamSettings> {
  const raw = (env as Record<string, unknown> | undefined)?.[UPSTREAMS_VAR];
  if (raw === undefined) return {};
  const parsed = upstreamTablesSchema.safeParse(typeof raw === "string" ? JSON.parse(raw) : raw);
  if (!parsed.success) throw new Error(`the ${UPSTREAMS_VAR} binding holds upstream settings that cannot be used: ${parsed.error.message}`);
  return parsed.data;
}

/** One upstream as this worker calls it: its policy, breaker, bulkhead and timeout. */
interface Runtime {
  name: string;
  policy: UpstreamPolicy;
  breaker: Breaker;
  bulkhead: BulkheadPolicy | undefined;
  timeout: TimeoutPolicy;
}

/** The worker's upstreams, made on first use from its env (one set per env object, so per worker). */
class Upstreams {
  readonly #tables: Record<string, UpstreamSettings>;
  readonly #shared: BreakerStore | null;
  readonly #runtimes = new Map<string, Runtime>();
  readonly #chains = new Map<string, string[]>();

  constructor(env: unknown) {
    this.#tables = { ...declared };
    for (const [name, settings] of Object.entries(fileTables(env))) this.#tables[name] = { ...this.#tables[name], ...settings };
    const redis = redisFromEnv(env, { timeoutMs: STORE_TIMEOUT_MS });
    this.#shared = redis ? new RedisStore(redis) : null;
  }

  /** The upstreams a call to `name` tries, worked out once per name. */
  chain(name: string): string[] {
    let chain = this.#chains.get(name);
    if (!chain) {
      if (!UPSTREAM_NAME.test(name))
        throw new Error(`outbound(): "${name}" is not an upstream name (lowercase letters, digits and -, up to 63 characters)`);
      const found = failoverChain(name, this.#tables);
      if ("problem" in found) throw new Error(found.problem);
      this.#chains.set(name, (chain = found));
    }
    return chain;
  }

  get(name: string): Runtime {
    let runtime = this.#runtimes.get(name);
    if (!runtime) {
      const policy = upstreamPolicy(this.#tables[name] ?? {});
      runtime = {
        name,
        policy,
        breaker: new Breaker(name, policy, localStore, this.#shared),
        bulkhead: policy.max_in_flight === undefined ? undefined : bulkhead(policy.max_in_flight, 0),
        // The answer's body is read after the try returns: its signal must stay unaborted then.
        timeout: timeout(policy.timeout_ms, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false }),
      };
      this.#runtimes.set(name, runtime);
    }
    return runtime;
  }
}

const upstreamsOf = perEnv((env) => new Upstreams(env));

/** A Response the upstream failed with: 5xx, 408 and 429 count against it (and are retried); other statuses are answers. */
const failingResponse = (value: unknown): value is Response =>
  value instanceof Response && (value.status >= 500 || value.status === 408 || value.status === 429);

/** What one call learns about itself while it runs. */
interface CallState {
  /** Requests it made through upstream.fetch, and whether one of them used a method that is not idempotent. */
  fetched: number;
  unsafe: boolean;
  /** A try got past the breaker and the bulkhead, so the upstream may have seen the call. */
  sent: boolean;
}

/** How one upstream's tries ended: its answer, or why there is none (with the failing Response, if that was it). */
type Failure<T> = { ok: false; error: UpstreamError; value?: T | undefined; final: boolean };
type Result<T> = { ok: true; value: T } | Failure<T>;

function detailOf(err: unknown, runtime: Runtime): { outcome: TryOutcome; detail: string } {
  if (err instanceof TaskCancelledError) return { outcome: "timeout", detail: `no answer within ${runtime.policy.timeout_ms} ms` };
  return { outcome: "error", detail: (err as Error)?.message ?? String(err) };
}

function report(
  runtime: Runtime,
  attempt: number,
  outcome: TryOutcome,
  started: number,
  extra: { status?: number; change?: BreakerState } = {},
) {
  const view = runtime.breaker.view;
  publish({
    upstream: runtime.name,
    attempt,
    outcome,
    ms: Date.now() - started,
    state: view.state,
    since: view.since,
    scope: runtime.breaker.scope(),
    ...extra,
  });
}

function busy(runtime: Runtime, attempt: number, started: number, cause?: unknown): UpstreamError {
  report(runtime, attempt, "busy", started);
  const message = `The upstream "${runtime.name}" has ${runtime.policy.max_in_flight} calls in flight already; try again shortly`;
  return new UpstreamError(runtime.name, "busy", message, { retryAfterMs: 1000, cause });
}

/** One try: the breaker's and the bulkhead's leave, then the call under its timeout. */
async function attemptOnce<T>(
  runtime: Runtime,
  attempt: number,
  call: (signal: AbortSignal, upstream: Upstream) => Promise<T>,
  state: CallState,
): Promise<T> {
  const started = Date.now();
  const { name, policy, breaker } = runtime;
  // A full bulkhead refuses before the breaker is asked, so that a probe it granted is never refused here (its lease
  // would keep every other caller out until it ran out).
  if (runtime.bulkhead && runtime.bulkhead.executionSlots === 0) throw busy(runtime, attempt, started);
  const admission: Admission = await breaker.admit();
  if (!admission.go) {
    report(runtime, attempt, "refused", started);
    throw new UpstreamError(name, "open", `The upstream "${name}" is unavailable (its circuit breaker is open); try again shortly`, {
      retryAfterMs: admission.retryAfterMs,
    });
  }
  const run = (signal: AbortSignal) => {
    state.sent = true;
    const upstream: Upstream = {
      name,
      url: policy.url,
      attempt,
      fetch(input, init = {}) {
        const method = (init.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
        state.fetched++;
        if (!IDEMPOTENT.has(method)) state.unsafe = true;
        const target = typeof input === "string" && !/^[a-z][a-z0-9+.-]*:/i.test(input) ? resolve(name, policy.url, input) : input;
        return fetch(target, { ...init, signal: init.signal ? AbortSignal.any([init.signal, signal]) : signal });
      },
    };
    return call(signal, upstream);
  };
  let value: T;
  try {
    const timed = () => runtime.timeout.execute(({ signal }) => run(signal));
    value = runtime.bulkhead ? await runtime.bulkhead.execute(timed) : await timed();
  } catch (err) {
    if (err instanceof BulkheadRejectedError) {
      report(runtime, attempt, "busy", started);
      throw new UpstreamError(
        name,
        "busy",
        `The upstream "${name}" has ${policy.max_in_flight} calls in flight already; try again shortly`,
        {
          retryAfterMs: 1000,
          cause: err,
        },
      );
    }
    const { outcome, detail } = detailOf(err, runtime);
    const change = await breaker.failed(admission, outcome === "timeout" ? "a timeout" : detail);
    report(runtime, attempt, outcome, started, change?.changed ? { change: change.record.state } : {});
    throw outcome === "timeout"
      ? new UpstreamError(name, "timeout", `The upstream "${name}" did not answer within ${policy.timeout_ms} ms`, { cause: err })
      : new UpstreamError(name, "failed", `The upstream "${name}" could not be reached: ${detail}`, { cause: err });
  }
  if (failingResponse(value)) {
    const change = await breaker.failed(admission, `status ${value.status}`);
    report(runtime, attempt, "failed_status", started, {
      status: value.status,
      ...(change?.changed ? { change: change.record.state } : {}),
    });
  } else {
    const change = await breaker.succeeded(admission);
    report(runtime, attempt, "ok", started, {
      ...(value instanceof Response ? { status: value.status } : {}),
      ...(change?.changed ? { change: change.record.state } : {}),
    });
  }
  return value;
}

/** A mistake in the calling code (not the upstream failing): thrown as it is, never counted or retried. */
class UsageError extends TypeError {}

/** `path` under `base`: "https://h/v1" and "/charges?x=a//b" give "https://h/v1/charges?x=a//b". */
export function resolve(name: string, base: string | undefined, path: string): string {
  if (!base)
    throw new UsageError(`upstream "${name}" has no url setting, so "${path}" cannot be resolved: set url or pass an absolute URL`);
  return `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}

/** Every try one upstream gets: retried with backoff while the call may be and the failures are worth retrying. */
async function callUpstream<T>(
  runtime: Runtime,
  call: (signal: AbortSignal, upstream: Upstream) => Promise<T>,
  options: CallOptions<T>,
): Promise<Result<T>> {
  const state: CallState = { fetched: 0, unsafe: false, sent: false };
  const mayRetry = () => options.idempotent === true || runtime.policy.retry_non_idempotent || (state.fetched > 0 && !state.unsafe);
  const policy = retry(
    handleWhen((err) => mayRetry() && err instanceof UpstreamError && (err.kind === "timeout" || err.kind === "failed")).orWhenResult(
      (value) => mayRetry() && failingResponse(value),
    ),
    {
      maxAttempts: runtime.policy.retries,
      backoff: new ExponentialBackoff({ initialDelay: runtime.policy.retry_delay_ms, maxDelay: runtime.policy.retry_max_delay_ms }),
    },
  );
  // A failing answer that is retried is not read: free its connection.
  policy.onRetry((reason) => {
    if ("value" in reason && reason.value instanceof Response) void reason.value.body?.cancel();
  });
  const failed = (error: UpstreamError, value?: T): Failure<T> => ({ ok: false, error, value, final: state.sent && !mayRetry() });
  try {
    const value = await policy.execute(({ attempt }) => attemptOnce(runtime, attempt + 1, call, state));
    if (failingResponse(value))
      return failed(new UpstreamError(runtime.name, "failed", `The upstream "${runtime.name}" answered ${value.status}`), value);
    return { ok: true, value };
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    return failed(err);
  }
}

/**
 * Calls the upstream `name` (then its failover, if it has one) under its policy. See the module's comment for what
 * counts as a failure, what is retried and what is thrown.
 */
export async function outbound<T>(
  c: OutboundContext,
  name: string,
  call: (signal: AbortSignal, upstream: Upstream) => Promise<T>,
  options: CallOptions<T> = {},
): Promise<T> {
  const upstreams = upstreamsOf(c.env);
  let last: Failure<T> | undefined;
  for (const next of upstreams.chain(name)) {
    const result = await callUpstream(upstreams.get(next), call, options);
    if (result.ok) return result.value;
    if (last?.value instanceof Response) void last.value.body?.cancel();
    last = result;
    // A call that may have reached the upstream and may not be repeated is not sent to another one either.
    if (result.final) break;
  }
  // The chain holds `name` at least, so some upstream failed.
  last = last as Failure<T>;
  if (options.fallback) {
    const started = Date.now();
    if (last.value instanceof Response) void last.value.body?.cancel();
    const value = await options.fallback(last.error);
    report(upstreams.get(name), 0, "fallback", started);
    return value;
  }
  if (last.value !== undefined) return last.value;
  throw last.error;
}
