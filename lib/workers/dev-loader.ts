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
import type { DevVersion, QueueOutcome } from "../shared/names.ts";

type DevLoaderEnv = Record<string, unknown>;

/**
 * What a service binding to a worker offers under `service_binding_extra_handlers` (workers-types leaves it out):
 * running its scheduled() handler.
 */
interface ScheduledFetcher {
  scheduled(options: { cron: string; scheduledTime: Date }): Promise<{ outcome: string; noRetry: boolean }>;
}

/** What a service binding to a worker offers for queues under `service_binding_extra_handlers`. */
interface QueueFetcher {
  queue(queueName: string, messages: { id: string; timestamp: Date; body: unknown; attempts: number }[]): Promise<QueueOutcome>;
}

/**
 * A queue binding as a dynamic worker can hold it: workerd cannot hand a Queue (nor an RpcTarget) to a Worker
 * Loader's worker ("Could not serialize object of type WorkerQueue"), but it hands over a service binding to an
 * entrypoint of this worker, made with ctx.exports; its props name the binding whose send() it runs here.
 */
export class QueueRelay extends WorkerEntrypoint<DevLoaderEnv, { binding: string }> {
  #queue(): Queue {
    return this.env[this.ctx.props.binding] as Queue;
  }

  send(body: unknown, options?: QueueSendOptions): Promise<QueueSendResponse> {
    return this.#queue().send(body, options);
  }

  sendBatch(messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions): Promise<QueueSendBatchResponse> {
    return this.#queue().sendBatch(messages, options);
  }
}

/** A queue binding (a service binding answers any method name, so look at the class, as workerd names it). */
const isQueue = (value: unknown): value is Queue =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value)?.constructor?.name === "WorkerQueue";

interface RelayExports {
  QueueRelay(options: { props: { binding: string } }): Fetcher;
}

/**
 * The env a dynamic worker gets: the dev loader's own, less the loader and token, with queues relayed. Made anew for
 * each version it loads: a relay made in one request cannot be handed to a worker loaded in another ("Cannot perform
 * I/O on behalf of a different request", I/O type SubrequestChannel).
 */
function dynamicEnv(env: DevLoaderEnv, exports: RelayExports): Record<string, unknown> {
  const { [DEV_LOADER_BINDING]: _loader, [DEV_TOKEN_BINDING]: _token, ...rest } = env;
  return Object.fromEntries(
    Object.entries(rest).map(([name, value]) => [name, isQueue(value) ? exports.QueueRelay({ props: { binding: name } }) : value]),
  );
}

/** A method no worker has: calling it makes workerd start the worker (and report a top-level throw) and run nothing. */
const PROBE = "__workyardDevStartProbe";
/** workerd's answer once the worker has started: it has no such method. */
const STARTED = "does not implement the method";
/**
 * workerd's answer when it keeps the cause to itself (e.g. a module with no default export: its log says "Failed to
 * get handler to worker"); it logs the cause under the same reference.
 */
const INTERNAL = "internal error; reference = ";

/** The version served now; kept whole, as the Worker Loader may ask for its code again. */
let current: DevVersion | undefined;

const notStarted = "This function has not started in npm run dev yet: see the dev server's output";

export default class DevLoader extends WorkerEntrypoint<DevLoaderEnv> {
  #entrypoint(version: DevVersion): Fetcher {
    const loader = this.env[DEV_LOADER_BINDING] as WorkerLoader;
    const exports = (this.ctx as unknown as { exports: RelayExports }).exports;
    return loader
      .get(version.id, () => ({
        compatibilityDate: version.compatibilityDate,
        compatibilityFlags: version.compatibilityFlags,
        allowExperimental: true, // as miniflare's own workers: it runs workerd with --experimental
        mainModule: `${version.worker}.js`,
        modules: { [`${version.worker}.js`]: version.script },
        env: dynamicEnv(this.env, exports),
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
      if (message.startsWith(INTERNAL)) return `workerd did not say why (${message}): its log line with that reference does`;
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

  /**
   * Runs the served version's queue() on a batch miniflare delivers, and hands its outcome back to the batch
   * message by message (a per-message call first, as workerd ranks them; a handler that threw retries what it did
   * not ack).
   */
  override async queue(batch: MessageBatch): Promise<void> {
    if (!current) throw new Error(notStarted);
    const entrypoint = this.#entrypoint(current) as unknown as QueueFetcher;
    const result = await entrypoint.queue(
      batch.queue,
      batch.messages.map((m) => ({ id: m.id, timestamp: m.timestamp, body: m.body, attempts: m.attempts })),
    );
    // Each message's fate is decided here, by Cloudflare's rules (a per-message call first), and told to miniflare one
    // message at a time: its broker ignores explicit acks when the handler throws or calls retryAll().
    const acked = new Set(result.explicitAcks);
    const retried = new Map(result.retryMessages.map((r) => [r.msgId, r.delaySeconds]));
    const retryAll = result.outcome !== "ok" || result.retryBatch.retry;
    const batchDelay = result.outcome === "ok" ? result.retryBatch.delaySeconds : undefined;
    for (const m of batch.messages) {
      const delay = retried.has(m.id) ? retried.get(m.id) : acked.has(m.id) || !retryAll ? null : batchDelay;
      if (delay === null) m.ack();
      else m.retry(delay === undefined ? {} : { delaySeconds: delay });
    }
  }

  /** Runs the served version's scheduled(); a failed run is thrown again, so the caller sees outcome "exception". */
  override async scheduled(controller: ScheduledController): Promise<void> {
    if (!current) throw new Error(notStarted);
    const entrypoint = this.#entrypoint(current) as unknown as ScheduledFetcher;
    const { outcome } = await entrypoint.scheduled({ cron: controller.cron, scheduledTime: new Date(controller.scheduledTime) });
    if (outcome !== "ok") throw new Error(`scheduled() ended with outcome "${outcome}" (its error is logged above)`);
  }
}
