/**
 * `npm run dev` only: the worker miniflare runs in place of each function (and of the gateway). It holds no code
 * of its own: the dev server hands it each new bundle, and it serves that bundle as a dynamic worker through
 * workerd's Worker Loader, keyed by the bundle's version id. A save then changes which dynamic worker answers,
 * in the same workerd process, instead of restarting workerd with new scripts (miniflare's setOptions, seconds
 * on a small machine). Its bindings (vars, secrets, service bindings to the other functions) are the function's
 * and are passed on as the dynamic worker's env; changing them is a settings change, which restarts workerd.
 *
 * The dev server hands a version over as a request carrying the run's token (DEV_ACTIVATE_HEADER), not as an
 * RPC call: miniflare's Node-side proxy makes RPC calls synchronously and sends their arguments slowly (~100 ms
 * for a 1.6 MB bundle), while a request streams.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { DEV_ACTIVATE_HEADER, DEV_LOADER_BINDING, DEV_TOKEN_BINDING } from "../shared/names.ts";
import type { DevVersion } from "../shared/names.ts";

type DevLoaderEnv = Record<string, unknown>;

/**
 * What a service binding to a worker offers under `service_binding_extra_handlers` (workers-types leaves it out):
 * running its scheduled() handler.
 */
interface ScheduledFetcher {
  scheduled(options: { cron: string; scheduledTime: Date }): Promise<{ outcome: string; noRetry: boolean }>;
}

/** A method no worker has: calling it makes workerd start the worker (and report a top-level throw) and run nothing. */
const PROBE = "__workyardDevStartProbe";
/** workerd's answer once the worker has started: it has no such method. */
const STARTED = "does not implement the method";

/** The version served now; kept whole, as the Worker Loader may ask for its code again. */
let current: DevVersion | undefined;

const notStarted = "This function has not started in npm run dev yet: see the dev server's output";

export default class DevLoader extends WorkerEntrypoint<DevLoaderEnv> {
  #entrypoint(version: DevVersion): Fetcher {
    const { [DEV_LOADER_BINDING]: loader, [DEV_TOKEN_BINDING]: _token, ...env } = this.env;
    return (loader as WorkerLoader)
      .get(version.id, () => ({
        compatibilityDate: version.compatibilityDate,
        compatibilityFlags: version.compatibilityFlags,
        allowExperimental: true, // as miniflare's own workers: it runs workerd with --experimental
        mainModule: `${version.worker}.js`,
        modules: { [`${version.worker}.js`]: version.script },
        env,
      }))
      .getEntrypoint();
  }

  /**
   * Starts `version` and serves it from now on; returns null, or workerd's startup error (a throw at the top
   * level, a syntax error esbuild let through) while the previous version keeps serving.
   */
  async #activate(version: DevVersion): Promise<string | null> {
    const entrypoint = this.#entrypoint(version) as unknown as Record<string, () => Promise<unknown>>;
    try {
      await entrypoint[PROBE]?.();
      return `the worker answered ${PROBE}(): it must not define it`;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!message.includes(STARTED)) return message; // "Failed to start Worker:\nUncaught Error: ..."
    }
    current = version;
    return null;
  }

  override async fetch(request: Request): Promise<Response> {
    const token = this.env[DEV_TOKEN_BINDING];
    if (typeof token === "string" && request.headers.get(DEV_ACTIVATE_HEADER) === token) {
      const error = await this.#activate(await request.json<DevVersion>());
      return error === null ? new Response("started") : new Response(error, { status: 422 });
    }
    if (!current) return Response.json({ error: { code: "not_started", message: notStarted } }, { status: 503 });
    return this.#entrypoint(current).fetch(request);
  }

  /** Runs the served version's scheduled(); a failed run is thrown again, so the caller sees outcome "exception". */
  override async scheduled(controller: ScheduledController): Promise<void> {
    if (!current) throw new Error(notStarted);
    const entrypoint = this.#entrypoint(current) as unknown as ScheduledFetcher;
    const { outcome } = await entrypoint.scheduled({ cron: controller.cron, scheduledTime: new Date(controller.scheduledTime) });
    if (outcome !== "ok") throw new Error(`scheduled() ended with outcome "${outcome}" (its error is logged above)`);
  }
}
