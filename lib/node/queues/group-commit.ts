/**
 * Group commit for sends: while as many INSERTs as allowed are running, the sends that arrive wait and are then
 * stored together in one statement, so that many concurrent send() calls share one commit (one WAL flush) instead
 * of paying one each. A lone send is written at once, with no added wait. Each caller's promise settles when the
 * statement holding its messages commits, or fails with it (then none of that statement's messages is stored).
 */
import type { NewMessage, QueueStore } from "./store.ts";

type Row = NewMessage & { queue: string };

/** Too many sends already wait for the database. */
export class Backlogged extends Error {}

interface Waiting {
  rows: Row[];
  /** Their bodies' size, counted once. */
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  readonly #store: QueueStore;
  readonly #maxInFlight: number;
  readonly #maxRows: number;
  #inFlight = 0;
  #waiting: Waiting[] = [];

  readonly #maxBytes: number;
  readonly #maxWaitingRows: number;
  #waitingRows = 0;

  constructor(store: QueueStore, { maxInFlight = 2, maxRows = 500, maxBytes = 4 * 1024 * 1024, maxWaitingRows = 10_000 } = {}) {
    this.#store = store;
    this.#maxInFlight = maxInFlight;
    this.#maxRows = maxRows;
    this.#maxBytes = maxBytes;
    this.#maxWaitingRows = maxWaitingRows;
  }

  /**
   * Stores `messages` in `queue`; resolves once they are committed. Refuses (Backlogged) when more rows than
   * maxWaitingRows already wait: the database is not keeping up, and a send must fail rather than wait without end.
   */
  send(queue: string, messages: NewMessage[]): Promise<void> {
    if (this.#waitingRows + messages.length > this.#maxWaitingRows) {
      return Promise.reject(new Backlogged(`${this.#waitingRows} messages already wait for the database`));
    }
    this.#waitingRows += messages.length;
    return new Promise<void>((resolve, reject) => {
      const bytes = messages.reduce((n, m) => n + m.body.length, 0);
      this.#waiting.push({ rows: messages.map((m) => ({ ...m, queue })), bytes, resolve, reject });
      this.#next();
    });
  }

  #next(): void {
    if (this.#inFlight >= this.#maxInFlight || this.#waiting.length === 0) return;
    const group: Waiting[] = [];
    let rows = 0;
    let bytes = 0;
    while (this.#waiting.length > 0) {
      const w = this.#waiting[0] as Waiting;
      if (group.length > 0 && (rows + w.rows.length > this.#maxRows || bytes + w.bytes > this.#maxBytes)) break;
      this.#waiting.shift();
      group.push(w);
      rows += w.rows.length;
      bytes += w.bytes;
    }
    this.#waitingRows -= rows;
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
