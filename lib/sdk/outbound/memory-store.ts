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

  async read(name: string): Promise<BreakerRecord> {
    return this.#records.get(name) ?? CLOSED;
  }

  async trip(name: string, now: number): Promise<Changed> {
    return this.#apply(name, trip(await this.read(name), now));
  }

  async fail(name: string, now: number, threshold: number): Promise<Changed> {
    return this.#apply(name, fail(await this.read(name), now, threshold));
  }

  async succeed(name: string): Promise<Changed> {
    return this.#apply(name, succeed(await this.read(name)));
  }

  async probe(name: string, now: number, waits: Waits, leaseMs: number): Promise<Changed & { granted: boolean }> {
    return this.#apply(name, probe(await this.read(name), now, waits, leaseMs));
  }

  async close(name: string, now: number): Promise<Changed> {
    return this.#apply(name, close(await this.read(name), now));
  }
}
