/**
 * The dispatcher: for each consumed queue, claims ready messages (store.ts: SKIP LOCKED, a lease) in batches of
 * max_batch_size (or fewer once the oldest has waited max_batch_timeout), delivers each batch to the consumer's real
 * queue() handler in workerd through the internal socket (POST /queue/<function>), and applies the outcome
 * (outcome.ts). At most max_concurrency batches of a queue are out at once on this node, so one busy queue cannot
 * take every connection from the others or from HTTP traffic.
 *
 * At-least-once: a batch whose consumer hangs past its deadline, whose workerd dies, or whose node dies keeps its
 * lease until the lease ends, and is then delivered again (its attempts counted). A batch that never reached the
 * consumer (workerd refusing connections during a restart) is given back without counting the attempt.
 *
 * It wakes at once when this node's queue service stores a message, and otherwise every poll interval (messages sent
 * on another node, delays and leases ending, a paused queue resumed).
 */
import { z } from "zod";
import type { ConsumerOf } from "./config.ts";
import type { QueueCounts } from "./counts.ts";
import { failedBatch, settlement } from "./outcome.ts";
import type { Claim, QueueStore, Settlement } from "./store.ts";
import { INTERNAL_PATHS } from "../../shared/names.ts";
import type { QueueDelivery, QueueOutcome } from "../../shared/names.ts";

export interface DispatcherOptions {
  store: QueueStore;
  consumers: ConsumerOf[];
  internalUrl: string;
  internalToken: string;
  counts: QueueCounts;
  /** Longest sleep between two looks at a queue (WORKYARD_QUEUE_POLL_MS, default 1000). */
  pollMs?: number;
  log: (line: string) => void;
}

/** workerd's outcome of a batch, as the internal worker answers it (QueueOutcome). */
const outcomeSchema = z.object({
  outcome: z.string(),
  ackAll: z.boolean(),
  retryBatch: z.object({ retry: z.boolean(), delaySeconds: z.number().int().nonnegative().optional() }),
  explicitAcks: z.array(z.string()),
  retryMessages: z.array(z.object({ msgId: z.string(), delaySeconds: z.number().int().nonnegative().optional() })),
}) satisfies z.ZodType<QueueOutcome>;

/** A lease outlives the consumer's deadline by this much, so a delivery that just made its deadline can settle. */
const LEASE_MARGIN_MS = 5000;
/** After the database or workerd failed, wait this long (doubling up to the poll interval's 5x) before trying again. */
const BACKOFF_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One consumed queue's loop. */
class QueueLoop {
  readonly consumer: ConsumerOf;
  readonly #opts: DispatcherOptions;
  #active = 0;
  #stopped = false;
  #wake: (() => void) | undefined;
  #woken = false;
  #failures = 0;
  /** The last problem said, so a database outage is said once and its end once. */
  #said: string | undefined;
  readonly #deliveries = new Set<Promise<void>>();
  #loop: Promise<void> | undefined;
  paused = false;

  constructor(consumer: ConsumerOf, opts: DispatcherOptions) {
    this.consumer = consumer;
    this.#opts = opts;
  }

  start(): void {
    this.#loop = this.#run();
  }

  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** Stops claiming; waits up to `graceMs` for deliveries out now (the rest keep their lease and come back later). */
  async stop(graceMs: number): Promise<void> {
    this.#stopped = true;
    this.wake();
    await this.#loop;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#deliveries]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  #say(problem: string | undefined): void {
    if (problem === this.#said) return;
    if (problem) this.#opts.log(`queues: "${this.consumer.queue}": ${problem}`);
    else if (this.#said) this.#opts.log(`queues: "${this.consumer.queue}": delivering again`);
    this.#said = problem;
  }

  /** Sleeps up to `ms`, or until woken. */
  async #idle(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
    this.#woken = false;
  }

  async #run(): Promise<void> {
    const { store } = this.#opts;
    const poll = this.#opts.pollMs ?? 1000;
    const c = this.consumer;
    while (!this.#stopped) {
      if (this.paused || this.#active >= c.maxConcurrency) {
        await this.#idle(poll);
        continue;
      }
      let claim: Claim;
      const claimedAt = Date.now();
      try {
        claim = await store.claim(c.queue, c.maxBatchSize, c.timeoutMs + LEASE_MARGIN_MS, c.maxBatchTimeoutMs);
      } catch (err) {
        this.#say(`the database did not answer (${(err as Error).message}); trying again`);
        await this.#idle(Math.min(BACKOFF_MS * 2 ** this.#failures++, poll * 5));
        continue;
      }
      this.#failures = 0;
      if (claim.messages.length === 0) {
        const due = await store.dueIn(c.queue, c.maxBatchTimeoutMs).catch(() => poll);
        await this.#idle(Math.min(due ?? poll, poll));
        continue;
      }
      this.#active++;
      const delivery = this.#deliver(claim, claimedAt + c.timeoutMs)
        // Not expected (every step catches its own failures): said, and the lease brings the batch back.
        .catch((err: unknown) =>
          this.#opts.log(`queues: "${c.queue}": a delivery failed unexpectedly: ${(err as Error).stack ?? String(err)}`),
        )
        .finally(() => {
          this.#active--;
          this.#deliveries.delete(delivery);
          this.wake();
        });
      this.#deliveries.add(delivery);
    }
  }

  /** Delivers a claimed batch; `deadline` (ms) is the claim's time plus queue_timeout_ms, inside its lease. */
  async #deliver(claim: Claim, deadline: number): Promise<void> {
    const c = this.consumer;
    // Messages whose lease ran out on their last delivery (a hang, a crash) have no delivery left.
    const spent = claim.messages.filter((m) => m.attempts > c.maxRetries + 1);
    const messages = claim.messages.filter((m) => m.attempts <= c.maxRetries + 1);
    if (spent.length > 0) {
      await this.#settle(claim.lease, {
        acked: [],
        retried: [],
        dead: spent.map((m) => m.id),
        ...(c.deadLetterQueue ? { deadLetterQueue: c.deadLetterQueue } : {}),
        reason: `queue() did not finish within ${c.timeoutMs} ms on its last delivery of ${c.maxRetries + 1}`,
      });
    }
    if (messages.length === 0) return;
    const body: QueueDelivery = {
      queue: c.queue,
      messages: messages.map((m) => ({
        id: m.id,
        timestamp: m.timestamp,
        attempts: m.attempts,
        contentType: m.contentType,
        body: m.body.toString("base64"),
      })),
    };
    let outcome: QueueOutcome;
    try {
      const res = await fetch(`${this.#opts.internalUrl}${INTERNAL_PATHS.queue}${c.functionName}`, {
        method: "POST",
        headers: { authorization: `Bearer ${this.#opts.internalToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        // Whatever recording the spent messages took comes off the handler's time: it must end inside the lease.
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      });
      if (!res.ok) throw new Error(`the internal worker answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const parsed = outcomeSchema.safeParse(await res.json());
      if (!parsed.success) throw new Error(`the internal worker's answer is not an outcome: ${parsed.error.issues[0]?.message ?? ""}`);
      outcome = parsed.data;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      if (cause === "ECONNREFUSED") {
        // Never reached a consumer (the internal socket closed: the supervisor stopping): the attempt does not count.
        // While workerd restarts, the supervisor holds the socket, so a delivery waits for the new process instead.
        this.#say("workerd refused the delivery (restarting?); trying again");
        await this.#opts.store.release(claim.lease).catch(() => {});
        await sleep(BACKOFF_MS);
        return;
      }
      const timedOut = (err as Error).name === "TimeoutError";
      const what = timedOut ? `queue() did not finish within ${c.timeoutMs} ms` : `the delivery failed (${(err as Error).message})`;
      this.#opts.log(`queues: "${c.queue}" → functions/${c.functionName}: ${what}`);
      // A hung handler may still be running: its messages stay leased until the lease ends, then come back.
      if (timedOut) return;
      await this.#settle(claim.lease, failedBatch(messages, c, what));
      return;
    }
    this.#say(undefined);
    await this.#settle(claim.lease, settlement(messages, outcome, c));
  }

  async #settle(lease: string, s: Settlement): Promise<void> {
    const c = this.consumer;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#opts.store.settle(lease, s);
        break;
      } catch (err) {
        if (attempt >= 4) {
          // The lease ends and the batch comes back: at least once, not lost.
          this.#say(`could not record a batch's outcome (${(err as Error).message}); it will be delivered again`);
          return;
        }
        await sleep(BACKOFF_MS * 2 ** attempt);
      }
    }
    const counts = this.#opts.counts;
    counts.add(c.queue, "acked", s.acked.length);
    counts.add(c.queue, "retried", s.retried.length);
    if (s.dead.length > 0) {
      if (s.deadLetterQueue) {
        counts.add(c.queue, "dead", s.dead.length);
        this.#opts.log(`queues: ${s.dead.length} message(s) of "${c.queue}" moved to "${s.deadLetterQueue}": ${s.reason}`);
      } else {
        counts.add(c.queue, "dropped", s.dead.length);
        this.#opts.log(`queues: ${s.dead.length} message(s) of "${c.queue}" dropped (no dead_letter_queue): ${s.reason}`);
      }
    }
  }
}

export class Dispatcher {
  readonly #loops: Map<string, QueueLoop>;
  readonly #opts: DispatcherOptions;
  #pausedTimer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(opts: DispatcherOptions) {
    this.#opts = opts;
    this.#loops = new Map(opts.consumers.map((c) => [c.queue, new QueueLoop(c, opts)]));
  }

  /** The queues this dispatcher delivers, with their consumers. */
  get consumers(): ConsumerOf[] {
    return [...this.#loops.values()].map((l) => l.consumer);
  }

  async start(): Promise<void> {
    if (this.#loops.size === 0) return;
    await this.#refreshPaused();
    if (this.#stopped) return; // stopped while it read the paused queues
    this.#pausedTimer = setInterval(() => void this.#refreshPaused(), this.#opts.pollMs ?? 1000);
    for (const loop of this.#loops.values()) loop.start();
  }

  /** Messages were stored in `queue` on this node. */
  wake(queue: string): void {
    this.#loops.get(queue)?.wake();
  }

  async #refreshPaused(): Promise<void> {
    const paused = await this.#opts.store.paused().catch(() => undefined);
    if (!paused) return;
    for (const loop of this.#loops.values()) {
      const was = loop.paused;
      loop.paused = paused.has(loop.consumer.queue);
      if (was && !loop.paused) loop.wake();
    }
  }

  /** Stops claiming; deliveries out now get `graceMs` to finish (the others come back when their lease ends). */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopped = true;
    if (this.#pausedTimer) clearInterval(this.#pausedTimer);
    await Promise.all([...this.#loops.values()].map((l) => l.stop(graceMs)));
  }
}
