/**
 * Miniflare installs SIGINT/SIGTERM listeners that kill workerd and exit at once, so the dev server would
 * never close the embedded database (its lock and a clean shutdown) on Ctrl-C. The dev script takes
 * those signals over and stops everything itself (miniflare's "exit" hook still kills workerd last).
 */
const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** Runs `work`, then removes the SIGINT/SIGTERM listeners it added. */
export async function withoutAddedSignalListeners<T>(work: () => Promise<T>): Promise<T> {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  try {
    return await work();
  } finally {
    for (const signal of SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
      }
    }
  }
}
