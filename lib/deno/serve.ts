/**
 * A function on Deno (`npm run deno -- <name>`): the generated entry (.workyard/deno/<name>.ts, made by the build from
 * the function's own source) calls `serveOnDeno` with the function's handler and what its merged Wrangler config says.
 * Deno passes no bindings and no execution context to a handler (its second argument is the connection's info), so
 * this gives the function what workerd would:
 * - env: the config's vars, the declared secrets from the environment (missing ones named at start, and nothing is
 *   served), the database pool (held across requests, as the function host object holds it on workerd) and the queue
 *   producers (over HTTP to the queue service npm run deno starts);
 * - ctx: a real `waitUntil`, whose promises are awaited before the process exits on SIGTERM or SIGINT;
 * - the client's IP from the socket, as workerd's `request.cf.clientIp` (lib/sdk/client-ip.ts reads it);
 * - crons through `Deno.cron` (run with --unstable-cron), each firing the handler's `scheduled`.
 */
import { DENO_HOST_VAR, DENO_PORT_VAR, DENO_TEST_SCHEDULED_VAR, QUEUE_SERVICE_TOKEN_VAR, QUEUE_SERVICE_URL_VAR } from "../shared/names.ts";
import { openPool, POOL_BINDING } from "../sdk/db.ts";
import type { Sql } from "../sdk/db.ts";
import { DenoQueueProducer } from "./queue-producer.ts";
import type { QueueService } from "./queue-producer.ts";

/** What a function module exports: a Hono app or any `{ fetch, scheduled? }` worker. */
export interface DenoHandler {
  fetch(request: Request, env: unknown, ctx: ExecutionContext): Response | Promise<Response>;
  scheduled?(controller: ScheduledController, env: unknown, ctx: ExecutionContext): unknown;
}

/** What the build writes into the entry from the function's merged config. */
export interface DenoTarget {
  name: string;
  vars: Record<string, unknown>;
  /** Secrets the config declares (read from the environment). */
  secrets: string[];
  crons: string[];
  /** Connections the database pool may hold (0: a connection per request, as on Cloudflare). */
  poolSize: number;
  producers: { binding: string; queue: string; deliveryDelay?: number }[];
}

/** The longest the process waits for requests in flight, then for waitUntil work, when stopping. */
const DRAIN_MS = 10_000;

export function serveOnDeno(handler: DenoHandler, target: DenoTarget): void {
  const missing = target.secrets.filter((name) => !Deno.env.get(name));
  if (missing.length > 0) {
    console.error(
      `functions/${target.name} needs ${missing.join(", ")} (declared under [secrets] required): set ${missing.length === 1 ? "it" : "them"} in the environment or .dev.vars`,
    );
    Deno.exit(2);
  }
  const env: Record<string, unknown> = { ...target.vars };
  for (const name of target.secrets) env[name] = Deno.env.get(name);
  let pool: Sql | undefined;
  if (target.poolSize > 0 && typeof env.DATABASE_URL === "string") env[POOL_BINDING] = pool = openPool(env.DATABASE_URL, target.poolSize);
  const queueUrl = Deno.env.get(QUEUE_SERVICE_URL_VAR);
  const service: QueueService | undefined = queueUrl ? { url: queueUrl, token: Deno.env.get(QUEUE_SERVICE_TOKEN_VAR) ?? "" } : undefined;
  for (const p of target.producers) env[p.binding] = new DenoQueueProducer(p.queue, p.deliveryDelay, service);

  const pending = new Set<Promise<unknown>>();
  const ctx = {
    waitUntil(promise: Promise<unknown>) {
      const tracked = Promise.resolve(promise)
        .catch((err: unknown) => console.error(`functions/${target.name}: a waitUntil task failed:`, err))
        .finally(() => pending.delete(tracked));
      pending.add(tracked);
    },
    passThroughOnException() {},
    props: {},
  } as unknown as ExecutionContext;

  const scheduled = handler.scheduled?.bind(handler);
  const testScheduled = Deno.env.get(DENO_TEST_SCHEDULED_VAR) === "1";
  const hostname = Deno.env.get(DENO_HOST_VAR) ?? "127.0.0.1";
  const port = Number(Deno.env.get(DENO_PORT_VAR) ?? 8000);
  const server = Deno.serve(
    {
      hostname,
      port,
      onListen: (addr) => console.log(`functions/${target.name} on Deno ${Deno.version.deno}: http://${addr.hostname}:${addr.port}/`),
      // A throw that escaped the function's own error handler: the platform's 500, the cause in the log.
      onError: (err) => {
        console.error(`functions/${target.name} threw:`, err);
        return Response.json({ error: { code: "internal_error", message: "Internal error" } }, { status: 500 });
      },
    },
    (request, info) => {
      // What workerd's request.cf.clientIp says: the peer of the connection.
      Object.defineProperty(request, "cf", { value: { clientIp: info.remoteAddr.hostname }, configurable: true });
      if (testScheduled && new URL(request.url).pathname === "/__scheduled") return fireByHand(request);
      return handler.fetch(request, env, ctx);
    },
  );

  /** Fires the scheduled handler for `cron`: on its schedule, or by hand. */
  const fire = async (cron: string, scheduledTime = Date.now()) => {
    const controller = { cron, scheduledTime, type: "scheduled", noRetry() {} } as unknown as ScheduledController;
    await scheduled?.(controller, env, ctx);
  };
  /** `/__scheduled?cron=<cron>` under --test-scheduled, as `wrangler dev --test-scheduled` answers it. */
  async function fireByHand(request: Request): Promise<Response> {
    const cron = new URL(request.url).searchParams.get("cron") ?? target.crons[0] ?? "";
    if (!scheduled) return new Response("This function has no scheduled handler", { status: 404 });
    try {
      await fire(cron);
      return new Response("Ran scheduled event");
    } catch (err) {
      console.error(`functions/${target.name}: the cron "${cron}" failed:`, err);
      return new Response("The scheduled event failed; see the log", { status: 500 });
    }
  }
  if (target.crons.length > 0) {
    if (!scheduled) console.error(`functions/${target.name} declares crons but exports no scheduled handler: they do not run`);
    else if (!Deno.cron)
      console.error(`functions/${target.name}: Deno.cron needs --unstable-cron (npm run deno passes it): crons do not run`);
    else {
      for (const [i, cron] of target.crons.entries()) {
        // A five-field schedule fires on whole minutes: the nearest one is the time it was scheduled for (Deno calls
        // a moment after it), as workerd's scheduledTime is the fire time, not the call's.
        const run = () =>
          fire(cron, Math.round(Date.now() / 60_000) * 60_000).catch((err: unknown) =>
            console.error(`functions/${target.name}: the cron "${cron}" failed:`, err),
          );
        try {
          // Deno allows letters, digits, spaces, hyphens and underscores in a cron's name.
          Deno.cron(`${target.name} cron ${i + 1}`, cron, run).catch((err: unknown) =>
            console.error(`functions/${target.name}: the cron "${cron}" stopped:`, err),
          );
        } catch (err) {
          // workyard's six-field form (seconds first) and other schedules Deno.cron does not take: said, not fatal.
          console.error(`functions/${target.name}: the cron "${cron}" cannot run on Deno (${(err as Error).message})`);
        }
      }
    }
  }

  /** True when `work` settled within `ms`. */
  const within = (work: Promise<unknown>, ms: number) =>
    Promise.race([work.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  let stopping = false;
  const stop = async () => {
    if (stopping) Deno.exit(1); // a second signal: stop now
    stopping = true;
    // No new connections; requests in flight finish (a response that streams on is cut after DRAIN_MS).
    if (!(await within(server.shutdown(), DRAIN_MS))) {
      console.error(`functions/${target.name}: requests still open after ${DRAIN_MS / 1000} s; stopping anyway`);
    }
    if (!(await within(Promise.allSettled([...pending]), DRAIN_MS))) {
      console.error(
        `functions/${target.name}: ${pending.size} waitUntil task(s) still running after ${DRAIN_MS / 1000} s; stopping anyway`,
      );
    }
    if (pool) await within(pool.end({ timeout: 5 }), 6000);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
}
