// The read cache's bookkeeping (lib/workers/db-cache/read-cache.ts): the staleness bounds, on a clock the test moves.
import { describe, expect, it } from "vitest";
import { ANY_TABLE } from "../../lib/shared/db-cache-event.ts";
import { ReadCache } from "../../lib/workers/db-cache/read-cache.ts";
import { approximateBytes } from "../../lib/workers/db-cache/entry-size.ts";

function cache(maxEntries = 100) {
  const clock = { now: 1_000_000 };
  return { clock, c: new ReadCache<string>({ maxEntries, now: () => clock.now }) };
}

describe("ReadCache", () => {
  it("serves an entry only while younger than the max age asked for, counted from when its read was sent", () => {
    const { clock, c } = cache();
    const ticket = c.ticket();
    clock.now += 300; // the read took 300 ms
    expect(c.store("k", "rows", ["links"], ticket)).toBe(true);
    expect(c.lookup("k", 1000)).toBe("rows");
    clock.now += 699;
    expect(c.lookup("k", 1000)).toBe("rows"); // 999 ms after it was sent
    clock.now += 1;
    expect(c.lookup("k", 1000)).toBeUndefined(); // 1000 ms: too old
    expect(c.lookup("k", 5000)).toBe("rows"); // a caller with a longer max age may still use it
  });

  it("drops an entry when one of its tables is written, and keeps others", () => {
    const { c } = cache();
    c.store("a", "A", ["links"], c.ticket());
    c.store("b", "B", ["users"], c.ticket());
    c.invalidate(["links"]);
    expect(c.lookup("a", 60_000)).toBeUndefined();
    expect(c.lookup("b", 60_000)).toBe("B");
  });

  it("never stores a read that was in flight when its table was written", () => {
    const { c } = cache();
    const ticket = c.ticket();
    c.invalidate(["links"]); // a write finished while the read was on its way
    expect(c.outdated(ticket, ["links"])).toBe(true);
    expect(c.store("k", "old", ["links"], ticket)).toBe(false);
    expect(c.lookup("k", 60_000)).toBeUndefined();
    // A read of another table is not affected.
    expect(c.store("u", "users", ["users"], ticket)).toBe(true);
  });

  it("treats a read of unknown tables as reading every table, and 'all' as writing every table", () => {
    const { c } = cache();
    c.store("fn", "F", [ANY_TABLE], c.ticket());
    c.store("x", "X", ["x"], c.ticket());
    c.invalidate(["anything"]);
    expect(c.lookup("fn", 60_000)).toBeUndefined();
    expect(c.lookup("x", 60_000)).toBe("X");
    const before = c.ticket();
    c.invalidate("all");
    expect(c.lookup("x", 60_000)).toBeUndefined();
    expect(c.store("y", "Y", ["y"], before)).toBe(false);
    expect(c.store("y", "Y", ["y"], c.ticket())).toBe(true);
  });

  it("keeps the entries' bytes within maxBytes, the oldest stored going first, and refuses an entry over it alone", () => {
    const clock = { now: 1_000_000 };
    const c = new ReadCache<string>({ maxEntries: 100, maxBytes: 100, now: () => clock.now });
    expect(c.store("a", "A", ["t"], c.ticket(), 40)).toBe(true);
    expect(c.store("b", "B", ["t"], c.ticket(), 40)).toBe(true);
    expect(c.bytes).toBe(80);
    expect(c.store("c", "C", ["t"], c.ticket(), 40)).toBe(true);
    expect(c.lookup("a", 60_000)).toBeUndefined(); // 120 > 100: the oldest went
    expect(c.lookup("b", 60_000)).toBe("B");
    expect(c.bytes).toBe(80);
    expect(c.store("b", "B2", ["t"], c.ticket(), 10)).toBe(true); // replacing an entry counts its new size only
    expect(c.bytes).toBe(50);
    expect(c.store("huge", "H", ["t"], c.ticket(), 101)).toBe(false);
    expect(c.lookup("c", 60_000)).toBe("C"); // nothing was dropped for it
    c.invalidate(["t"]);
    expect(c.lookup("c", 60_000)).toBeUndefined();
    expect(c.bytes).toBe(10); // dropped on lookup; b is still counted until it is looked up or evicted
    c.invalidate("all");
    expect(c.bytes).toBe(0);
  });

  it("estimates a result's bytes from what it holds", () => {
    const small = approximateBytes([{ id: 1, url: "https://example.com" }]);
    expect(small).toBeGreaterThan(2 * "https://example.com".length);
    expect(small).toBeLessThan(300);
    expect(approximateBytes([{ b: new Uint8Array(10_000) }])).toBeGreaterThan(10_000);
    expect(approximateBytes([{ s: "x".repeat(600_000) }])).toBeGreaterThan(1024 * 1024);
    expect(approximateBytes([{ j: { deep: [1, 2, { s: "y".repeat(1000) }] } }])).toBeGreaterThan(2000);
  });

  it("keeps a fresher entry over an older read that finished later, and at most maxEntries", () => {
    const { clock, c } = cache(2);
    const older = c.ticket();
    clock.now += 10;
    const newer = c.ticket();
    expect(c.store("k", "new", ["t"], newer)).toBe(true);
    expect(c.store("k", "old", ["t"], older)).toBe(false);
    expect(c.lookup("k", 60_000)).toBe("new");
    c.store("k2", "2", ["t"], c.ticket());
    c.store("k3", "3", ["t"], c.ticket());
    expect(c.size).toBe(2);
    expect(c.lookup("k", 60_000)).toBeUndefined(); // the oldest stored went first
  });
});
