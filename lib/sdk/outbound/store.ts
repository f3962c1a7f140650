/**
 * Where a breaker's record lives: in the isolate (memory-store.ts) or in Redis, shared (redis-store.ts). Both apply
 * the rules of breaker-state.ts; each change is one atomic step, so two callers racing to open or probe agree.
 */
import type { BreakerRecord, Changed, Waits } from "./breaker-state.ts";

export interface BreakerStore {
  /** "shared" when every isolate using the same Redis sees the record, "isolate" when only this one does. */
  readonly scope: "shared" | "isolate";
  read(name: string): Promise<BreakerRecord>;
  trip(name: string, now: number): Promise<Changed>;
  fail(name: string, now: number, threshold: number): Promise<Changed>;
  succeed(name: string): Promise<Changed>;
  probe(name: string, now: number, waits: Waits, leaseMs: number): Promise<Changed & { granted: boolean }>;
  close(name: string, now: number): Promise<Changed>;
}
