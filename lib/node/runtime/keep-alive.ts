/**
 * Keeps a child process running: when it exits without being asked to, start it again with exponential
 * backoff (0.5 s, 1 s, 2 s ... 30 s); after `maxFailures` failed starts in a row, give up and report.
 */
export interface Managed {
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export interface KeepAlive<T extends Managed> {
  current(): T;
  /** Stops the process and the watching. */
  stop(): Promise<void>;
  /** Stops the watching only and hands back the process, still running, for the caller to stop its own way. */
  release(): T;
}

export interface KeepAliveOptions<T extends Managed> {
  name: string;
  first: T;
  restart: () => Promise<T>;
  log: (line: string) => void;
  onFatal?: (err: Error) => void;
  maxFailures?: number;
}

/** Watches `first` and restarts it with `restart` whenever it dies. */
export function keepAlive<T extends Managed>({ name, first, restart, log, onFatal, maxFailures = 5 }: KeepAliveOptions<T>): KeepAlive<T> {
  let current = first;
  let stopping = false;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const watch = (proc: T, failures: number): void => {
    void proc.exited.then(async (code) => {
      if (stopping) return;
      if (failures >= maxFailures) {
        onFatal?.(new Error(`${name} keeps exiting (last exit code ${code}); giving up after ${failures} failed restarts`));
        return;
      }
      const delay = Math.min(30_000, 500 * 2 ** failures);
      log(`${name} exited unexpectedly (code ${code}); restarting in ${delay} ms`);
      await sleep(delay);
      if (stopping) return;
      try {
        current = await restart();
        if (stopping) {
          await current.stop();
          return;
        }
        log(`${name} is running again`);
        watch(current, 0);
      } catch (err) {
        log(`${name} restart failed: ${(err as Error).message}`);
        watch(proc, failures + 1);
      }
    });
  };
  watch(first, 0);

  return {
    current: () => current,
    async stop() {
      stopping = true;
      await current.stop();
    },
    release() {
      stopping = true;
      return current;
    },
  };
}
