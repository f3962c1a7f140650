/**
 * Hosts a function inside a Durable Object that owns a postgres.js pool, so database connections outlive a
 * request. workerd forbids a plain worker to reuse a socket across requests ("Cannot perform I/O on behalf of
 * a different request"), but a Durable Object's I/O belongs to the object, not to the request: one object per
 * function per workerd process keeps a pool of connections to PgBouncer open, and every request to the
 * function runs inside it. Measured: about 3x the throughput of a connection per request, with the same
 * function code (docs/performance/database-connection-reuse.md).
 *
 * The build generates the function's entry for workerd from this (see lib/node/build/function-entry.ts); the
 * function's own `index.ts`, which is what Wrangler deploys to Cloudflare, is unchanged and there `db(c)`
 * falls back to a connection per request.
 */
import { DurableObject } from "cloudflare:workers";
import { CACHE_BINDING, openPool, POOL_BINDING } from "../sdk/db.ts";
import { DB_LISTEN_URL_VAR, DB_POOL_MAX_VAR } from "../shared/names.ts";
import { HostCache } from "./db-cache/host-cache.ts";
import type { Sql } from "../sdk/db.ts";
import { requestOf, sinkTransport, traceInvocation, withoutSink } from "./trace/function.ts";
import type { Transport } from "./trace/sender.ts";

/** What a function module exports: a Hono app or any `{ fetch }` worker. */
export interface HostedHandler {
  fetch(request: Request, env: unknown, ctx: ExecutionContext): Response | Promise<Response>;
}

export interface HostOptions {
  /** The function's name, as its records say. */
  name: string;
  /** Connections the pool may hold. */
  poolSize: number;
  /** The gateway's deadline for its requests (ms): one still running past it is recorded as cancelled (trace/function.ts). */
  deadlineMs: number;
}

/** A Durable Object class that serves `handler`'s requests with a pool in `env` (see db.ts). */
export function functionHost(handler: HostedHandler, { name, poolSize, deadlineMs }: HostOptions) {
  return class FunctionHost extends DurableObject<Record<string, unknown>> {
    readonly #env: Record<string, unknown>;
    readonly #ctx: ExecutionContext;
    /** Where its records go (trace/function.ts); undefined without the trace sink binding (the bench's untraced rows). */
    readonly #send: Transport | undefined;
    #pool?: Sql;

    constructor(state: DurableObjectState, workerEnv: Record<string, unknown>) {
      super(state, workerEnv);
      this.#send = sinkTransport(workerEnv);
      const env = withoutSink(workerEnv);
      const url = env.DATABASE_URL; // the binding db(c) takes the pool for (db.ts)
      const cap = Number(env[DB_POOL_MAX_VAR]);
      const size = Number.isInteger(cap) && cap > 0 ? Math.min(poolSize, cap) : poolSize;
      // postgres.js connects lazily: a function that never queries never opens a connection.
      if (typeof url === "string" && url !== "") this.#pool = openPool(url, size);
      // The read cache (cached() in db.ts), unless the project turned it off: then the supervisor sets no listen URL.
      const listenUrl = env[DB_LISTEN_URL_VAR];
      const cache =
        this.#pool && typeof listenUrl === "string" && listenUrl !== "" ? new HostCache({ pool: this.#pool, listenUrl }) : undefined;
      // One env object for the object's life, so caches keyed by env (defineEnv) hold across requests.
      this.#env = !this.#pool
        ? env
        : cache
          ? { ...env, [POOL_BINDING]: cache.pool, [CACHE_BINDING]: cache }
          : { ...env, [POOL_BINDING]: this.#pool };
      this.#ctx = {
        waitUntil: (promise: Promise<unknown>) => state.waitUntil(promise),
        passThroughOnException: () => {},
        props: {},
      } as ExecutionContext;
    }

    override fetch(request: Request): Response | Promise<Response> {
      const run = (ctx: ExecutionContext) => handler.fetch(request, this.#env, ctx);
      return this.#send ? traceInvocation(this.#send, name, this.#ctx, { request: requestOf(request) }, deadlineMs, run) : run(this.#ctx);
    }
  };
}
