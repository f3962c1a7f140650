/**
 * What is gathered in memory and written in batches (errors, usage counts): a pending map, written every
 * `everyMs` (a timer that keeps no process alive) and on flush(), one write at a time. A failed write is
 * reported to `onError` and its batch dropped; the next flush goes on.
 */
export class BatchFlusher<V> {
  private batch = new Map<string, V>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  private readonly write: (batch: Map<string, V>) => Promise<void>;
  private readonly onError: (err: unknown) => void;

  constructor(write: (batch: Map<string, V>) => Promise<void>, everyMs: number, onError: (err: unknown) => void) {
    this.write = write;
    this.onError = onError;
    this.timer = setInterval(() => void this.flush(), everyMs);
    this.timer.unref();
  }

  /** What was gathered since the last write began: add to it. */
  get pending(): Map<string, V> {
    return this.batch;
  }

  /** Writes what is pending (after any write in progress); resolves when it is written or failed. */
  flush(): Promise<void> {
    this.flushing = this.flushing
      .then(async () => {
        if (this.batch.size === 0) return;
        const batch = this.batch;
        this.batch = new Map();
        await this.write(batch);
      })
      .catch(this.onError);
    return this.flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
