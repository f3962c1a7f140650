/**
 * Scheduled (cron) handlers: `export default withCrons(app, { "*\/5 * * * *": task })` gives a function
 * both its HTTP routes and a `scheduled` handler that runs the task declared for the cron that fired.
 * The crons themselves are declared in the function's wrangler.toml ([triggers] crons), as on Cloudflare.
 */
import type { Hono } from "hono";
import type { Env as HonoEnv } from "hono";

export type CronTask<B> = (event: ScheduledController, env: B, ctx: ExecutionContext) => Promise<void> | void;

export interface WorkerWithCrons<B> {
  fetch: (request: Request, env: B, ctx: ExecutionContext) => Response | Promise<Response>;
  scheduled: (event: ScheduledController, env: B, ctx: ExecutionContext) => Promise<void>;
}

/** The app's fetch plus a scheduled handler dispatching on `event.cron`. */
export function withCrons<E extends HonoEnv>(app: Hono<E>, tasks: Record<string, CronTask<E["Bindings"]>>): WorkerWithCrons<E["Bindings"]> {
  return {
    fetch: (request, env, ctx) => app.fetch(request, env, ctx),
    async scheduled(event, env, ctx) {
      const task = tasks[event.cron];
      if (!task) {
        // A cron in wrangler.toml with no task here is a mistake worth failing loudly on.
        throw new Error(`No task for cron "${event.cron}"; tasks exist for: ${Object.keys(tasks).join(", ") || "none"}`);
      }
      try {
        await task(event, env, ctx);
      } catch (err) {
        // workerd records only the outcome of a failed scheduled(); say what failed where an operator looks.
        console.error(`cron "${event.cron}" failed:`, err);
        throw err;
      }
    },
  };
}
