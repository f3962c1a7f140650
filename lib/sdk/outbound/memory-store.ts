/** Breaker records kept in this isolate: what a function without Redis (or with `shared = false`) uses. */
import { close, CLOSED, fail, probe, succeed, trip } from "./breaker-state.ts";
import type { BreakerRecord, Changed, Waits } from "./breaker-state.ts";
import type { BreakerStore } from "./store.ts";

export class MemoryStore implements BreakerStore {
  readonly scope = "isolate";
  readonly #records = new Map<string, BreakerRecord>();

  #apply<T extends Changed>(name: string, result: T): T {
    this.#records.set(name, result.record);
    return result;
  }

  /** Now, without waiting: every change below reads and writes in one step, so calls racing in one isolate agree. */
  #get(name: string): BreakerRecord {
    return this.#records.get(name) ?? CLOSED;
  }

  async read(name: string): Promise<BreakerRecord> {
    return this.#get(name);
  }

  async trip(name: string, now: number): Promise<Changed> {
    return this.#apply(name, trip(this.#get(name), now));
  }

  async fail(name: string, now: number, threshold: number): Promise<Changed> {
    return this.#apply(name, fail(this.#get(name), now, threshold));
  }

  async succeed(name: string): Promise<Changed> {
    return this.#apply(name, succeed(this.#get(name)));
  }

  async probe(name: string, now: number, waits: Waits, leaseMs: number): Promise<Changed & { granted: boolean }> {
    return this.#apply(name, probe(this.#get(name), now, waits, leaseMs));
  }

  async close(name: string, now: number): Promise<Changed> {
    return this.#apply(name, close(this.#get(name), now));
  }
}
