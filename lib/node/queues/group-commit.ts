/**
 * Group commit for sends: while as many INSERTs as allowed are running, the sends that arrive wait and are then
 * stored together in one statement, so that many concurrent send() calls share one commit (one WAL flush) instead
 * of paying one each. A lone send is written at once, with no added wait. Each caller's promise settles when the
 * statement holding its messages commits, or fails with it (then none of that statement's messages is stored).
 */
import type { NewMessage, QueueStore } from "./store.ts";

type Row = NewMessage & { queue: string };

interface Waiting {
  rows: Row[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  readonly #store: QueueStore;
  readonly #maxInFlight: number;
  readonly #maxRows: number;
  #inFlight = 0;
  #waiting: Waiting[] = [];

  constructor(store: QueueStore, { maxInFlight = 2, maxRows = 500 } = {}) {
    this.#store = store;
    this.#maxInFlight = maxInFlight;
    this.#maxRows = maxRows;
  }

  /** Stores `messages` in `queue`; resolves once they are committed. */
  send(queue: string, messages: NewMessage[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ rows: messages.map((m) => ({ ...m, queue })), resolve, reject });
      this.#next();
    });
  }

  #next(): void {
    if (this.#inFlight >= this.#maxInFlight || this.#waiting.length === 0) return;
    const group: Waiting[] = [];
    let rows = 0;
    while (this.#waiting.length > 0 && (group.length === 0 || rows + (this.#waiting[0]?.rows.length ?? 0) <= this.#maxRows)) {
      const w = this.#waiting.shift() as Waiting;
      group.push(w);
      rows += w.rows.length;
    }
    this.#inFlight++;
    this.#store
      .send(group.flatMap((w) => w.rows))
      .then(
        () => group.forEach((w) => w.resolve()),
        (err: unknown) => group.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.#inFlight--;
        this.#next();
      });
    this.#next();
  }
}
