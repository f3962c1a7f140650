/**
 * Queues in the supervisor: the queue service producers send to (service.ts), the dispatcher that delivers to
 * consumers (dispatcher.ts), and the counts both keep (counts.ts), over one connection pool to the platform's
 * database (directly, not through PgBouncer). The service starts before workerd (its address is in workerd's
 * environment); the dispatcher once workerd answers, and again with each release a deploy makes live.
 */
import postgres from "postgres";
import type { QueueMetrics } from "../observe/metrics.ts";
import type { Manifest } from "../releases/manifest.ts";
import { consumersOf } from "./config.ts";
import { QueueCounts } from "./counts.ts";
import { Dispatcher } from "./dispatcher.ts";
import { startQueueService } from "./service.ts";
import { QueueStore } from "./store.ts";

export interface QueuesOptions {
  databaseUrl: string;
  /** False on the embedded PGlite, whose connections share one session (no named statements). */
  prepare: boolean;
  /** WORKYARD_QUEUE_POLL_MS: longest wait before looking at a queue again (messages sent on another node). */
  pollMs?: number;
  log: (line: string) => void;
}

export interface Queues {
  /** The queue service, for workerd's environment. */
  url: string;
  token: string;
  store: QueueStore;
  counts: QueueCounts;
  /** Starts delivering the consumers of `manifest` (replacing those of the release before). */
  deliver(manifest: Manifest, internal: { url: string; token: string }): Promise<void>;
  /** Stops delivering (before workerd stops): batches out now get a few seconds, the rest come back later. */
  stopDelivering(): Promise<void>;
  /** Figures for /metrics: every queue's messages by state and dead letters, and this node's counts. */
  metrics(): Promise<QueueMetrics>;
  /** Stops the queue service and closes the pool (after workerd stopped: nothing sends any more). */
  stop(): Promise<void>;
}

/** The poll interval from WORKYARD_QUEUE_POLL_MS; a value that is not a positive number of ms is refused. */
export function queuePollMs(value: string | undefined): number {
  if (value === undefined || value === "") return 1000;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 10 || ms > 60_000) {
    throw new Error(`WORKYARD_QUEUE_POLL_MS must be a whole number of milliseconds from 10 to 60000 (got "${value}")`);
  }
  return ms;
}

export async function startQueues(opts: QueuesOptions): Promise<Queues> {
  // A statement that does not answer within 15 s fails (a send answers 503; a claim or outcome is tried again):
  // a database that stops answering without closing its connections must not hold sends until the gateway's deadline.
  // Not on the embedded PGlite, whose connections share one session (a setting would be everyone's).
  const sql = postgres(opts.databaseUrl, {
    max: 8,
    prepare: opts.prepare,
    onnotice: () => {},
    idle_timeout: 30,
    connect_timeout: 5,
    ...(opts.prepare ? { connection: { statement_timeout: 15_000 } } : {}),
  });
  const store = new QueueStore(sql);
  const counts = new QueueCounts(store);
  let dispatcher: Dispatcher | undefined;
  let service;
  try {
    service = await startQueueService({
      store,
      onSent: (queue, n) => {
        counts.add(queue, "sent", n);
        dispatcher?.wake(queue);
      },
      log: opts.log,
    });
  } catch (err) {
    await counts.stop().catch(() => {});
    await sql.end({ timeout: 1 });
    throw err;
  }
  const running = service;
  const stopDelivering = async () => {
    const stopping = dispatcher;
    dispatcher = undefined;
    await stopping?.stop();
  };
  return {
    url: running.url,
    token: running.token,
    store,
    counts,
    async deliver(manifest, internal) {
      const next = new Dispatcher({
        store,
        consumers: consumersOf(manifest.functions),
        internalUrl: internal.url,
        internalToken: internal.token,
        counts,
        pollMs: opts.pollMs,
        log: opts.log,
      });
      // Both may deliver for a moment: claims skip what the other holds.
      const replaced = dispatcher;
      dispatcher = next;
      await next.start();
      // The old one's deliveries finish (or keep their lease) in the background: a deploy does not wait for them.
      void replaced?.stop().catch((err: unknown) => opts.log(`queues: stopping the previous dispatcher: ${(err as Error).message}`));
    },
    stopDelivering,
    async metrics() {
      const [figures, dead] = await Promise.all([store.figures(), store.deadLetters()]);
      return {
        queues: figures.map((f) => ({ ...f, deadLetters: dead.get(f.queue) ?? 0 })),
        totals: new Map([...counts.totals].map(([q, c]) => [q, { ...c }])),
      };
    },
    async stop() {
      await stopDelivering();
      await running.stop();
      await counts.stop().catch(() => {});
      await sql.end({ timeout: 5 });
    },
  };
}
