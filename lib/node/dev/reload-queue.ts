/**
 * Runs reloads one at a time. Saves that arrive during a reload are merged into one batch, handled right
 * after it; other work (firing a cron, stopping) waits for the reload in progress and never overlaps one.
 */
import type { ChangeBatch } from "./watcher.ts";

export interface ReloadQueue {
  /** Queues a batch of saves. */
  push(batch: ChangeBatch): void;
  /** Runs `work` once nothing else runs. */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
}

/** A queue that hands each merged batch to `reload`, reporting what it throws to `onError`. */
export function reloadQueue(reload: (batch: ChangeBatch) => Promise<void>, onError: (err: unknown) => void): ReloadQueue {
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };

  let queued: ChangeBatch | undefined;
  let draining = false;
  const drain = async () => {
    draining = true;
    while (queued) {
      const batch: ChangeBatch = queued;
      queued = undefined;
      await exclusive(() => reload(batch)).catch(onError);
    }
    draining = false;
  };

  return {
    exclusive,
    push(batch) {
      if (queued) {
        for (const [file, kind] of batch.changes) queued.changes.set(file, kind);
        queued.savedAt = Math.min(queued.savedAt, batch.savedAt);
      } else {
        queued = batch;
      }
      if (!draining) void drain();
    },
  };
}
