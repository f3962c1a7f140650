/**
 * What happened to messages on this node (sent, acked, retried, dead-lettered, dropped), counted in memory and written
 * to workyard.queue_counts every few seconds (kept a week): one write per queue per flush instead of one per batch on the hot path.
 * Totals since start are kept for /metrics. A crash loses at most the counts of the last interval (never a message).
 */
import type { CountKind, QueueStore } from "./store.ts";

export type { CountKind };
export const COUNT_KINDS: readonly CountKind[] = ["sent", "acked", "retried", "dead", "dropped"];

export class QueueCounts {
  readonly #store: QueueStore;
  #pending = new Map<string, Partial<Record<CountKind, number>>>();
  /** Since this process started, by queue. */
  readonly totals = new Map<string, Record<CountKind, number>>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(store: QueueStore, flushMs = 5000) {
    this.#store = store;
    this.#timer = setInterval(() => void this.flush(), flushMs);
    this.#timer.unref();
  }

  add(queue: string, kind: CountKind, n: number): void {
    if (n === 0) return;
    const pending = this.#pending.get(queue) ?? {};
    pending[kind] = (pending[kind] ?? 0) + n;
    this.#pending.set(queue, pending);
    const total = this.totals.get(queue) ?? { sent: 0, acked: 0, retried: 0, dead: 0, dropped: 0 };
    total[kind] += n;
    this.totals.set(queue, total);
  }

  #prunedAt = 0;

  /**
   * Writes what was counted since the last flush (kept for the next one when the database does not answer), and once
   * an hour deletes counts older than a week.
   */
  async flush(): Promise<void> {
    if (Date.now() - this.#prunedAt > 3_600_000) {
      this.#prunedAt = Date.now();
      await this.#store.pruneCounts(7).catch(() => {});
    }
    const batch = this.#pending;
    this.#pending = new Map();
    for (const [queue, counts] of batch) {
      try {
        await this.#store.count(queue, counts);
      } catch {
        const now = this.#pending.get(queue) ?? {};
        for (const kind of COUNT_KINDS) if (counts[kind]) now[kind] = (now[kind] ?? 0) + (counts[kind] ?? 0);
        this.#pending.set(queue, now);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.flush();
  }
}
