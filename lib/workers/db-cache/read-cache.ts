/**
 * The read cache's bookkeeping, apart from any I/O: entries by query, how old each is, and which writes have
 * happened since a read was sent. Two rules keep a cached read correct:
 * - An entry's age counts from the moment its query was sent, so a hit is never older than the max age asked for.
 * - Every invalidation takes a number from one sequence. A read notes the sequence when it is sent, and its rows
 *   are stored only if none of its tables was invalidated after that (a write that finished while the read was in
 *   flight may not be in its rows); an entry is dropped on lookup when one of its tables was invalidated after its
 *   read was sent. So after a write is acknowledged to its caller (and its invalidation has run), no read of its
 *   tables can come from before it.
 */

import { ANY_TABLE } from "../../shared/db-cache-event.ts";

/** Tables whose last invalidation is remembered one by one. */
const MAX_TRACKED_TABLES = 10_000;

export interface CacheEntry<T> {
  rows: T;
  tables: readonly string[];
  /** When the read was sent (ms since the epoch) and the sequence then. */
  sentAt: number;
  seq: number;
  /** About what its rows take in memory (entry-size.ts). */
  bytes: number;
}

/** What a read in flight noted when it was sent. */
export interface ReadTicket {
  sentAt: number;
  seq: number;
}

export interface ReadCacheOptions {
  /** Entries kept; the oldest stored goes first. */
  maxEntries: number;
  /** What all entries' rows may take together, about (the oldest stored go first); unbounded when absent. */
  maxBytes?: number;
  now?: () => number;
}

export class ReadCache<T> {
  readonly #entries = new Map<string, CacheEntry<T>>();
  /** The sequence number of each table's last invalidation. */
  readonly #invalidated = new Map<string, number>();
  /** The last invalidation of every table (a write whose tables are unknown, a lost notification). */
  #all = 0;
  #seq = 0;
  readonly #max: number;
  readonly #maxBytes: number;
  #bytes = 0;
  readonly #now: () => number;

  constructor({ maxEntries, maxBytes = Infinity, now = Date.now }: ReadCacheOptions) {
    this.#max = maxEntries;
    this.#maxBytes = maxBytes;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** About what the entries' rows take together. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The entry for `key` if it is younger than `maxAgeMs` and none of its tables was written since its read. */
  lookup(key: string, maxAgeMs: number): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    // Too old for this caller; kept, since a caller with a longer max age may still use it (maxEntries bounds them).
    if (this.#now() - entry.sentAt >= maxAgeMs) return undefined;
    if (this.#writtenSince(entry.tables, entry.seq)) {
      this.#drop(key);
      return undefined;
    }
    return entry.rows;
  }

  /** Notes the moment and the sequence as a read is sent. */
  ticket(): ReadTicket {
    return { sentAt: this.#now(), seq: this.#seq };
  }

  /** True when a read sent with `ticket` of these tables may have missed a write (it must not be stored or shared). */
  outdated(ticket: ReadTicket, tables: readonly string[]): boolean {
    return this.#writtenSince(tables, ticket.seq);
  }

  /**
   * Stores a read's rows (about `bytes` in memory) unless one of its tables was invalidated after it was sent, or they
   * alone would take more than the whole budget; says whether it stored.
   */
  store(key: string, rows: T, tables: readonly string[], ticket: ReadTicket, bytes = 0): boolean {
    if (this.#writtenSince(tables, ticket.seq) || bytes > this.#maxBytes) return false;
    const current = this.#entries.get(key);
    if (current && current.sentAt > ticket.sentAt) return false; // a fresher read got there first
    this.#drop(key); // re-inserted at the end: the order is the order of storing
    this.#entries.set(key, { rows, tables, sentAt: ticket.sentAt, seq: ticket.seq, bytes });
    this.#bytes += bytes;
    while (this.#entries.size > this.#max || this.#bytes > this.#maxBytes) this.#drop(this.#entries.keys().next().value as string);
    return true;
  }

  /** Marks tables written (every table for "all"): entries that read them are gone, reads in flight are not stored. */
  invalidate(tables: readonly string[] | "all"): void {
    const seq = ++this.#seq;
    if (tables === "all" || tables.includes(ANY_TABLE)) {
      this.#all = seq;
      this.#entries.clear();
      this.#bytes = 0;
      this.#invalidated.clear(); // #all covers every table from here
      return;
    }
    for (const t of tables) this.#invalidated.set(t, seq);
    // Names come from notifications too: past this many, one "all" replaces them (and empties the cache once).
    if (this.#invalidated.size > MAX_TRACKED_TABLES) this.invalidate("all");
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }

  #writtenSince(tables: readonly string[], seq: number): boolean {
    if (this.#all > seq) return true;
    if (tables.includes(ANY_TABLE)) {
      // A read of unknown tables is outdated by any write at all.
      for (const s of this.#invalidated.values()) if (s > seq) return true;
      return false;
    }
    for (const t of tables) if ((this.#invalidated.get(t) ?? 0) > seq) return true;
    return false;
  }
}
