/**
 * Queue messages in PostgreSQL (workyard.queue_messages, platform migration 0003): storing what producers send,
 * claiming ready messages for a delivery with FOR UPDATE SKIP LOCKED and a lease, and applying a delivery's outcome.
 * A claim moves the message's visible_at to the lease's end, so a message whose consumer or node died becomes ready
 * again by itself when its lease runs out; an outcome is applied only to messages that still carry the delivery's lease
 * (a claim replaces it), so a late answer from a delivery that ran past its lease never touches a message claimed again
 * since.
 */
import { randomUUID } from "node:crypto";
import type { Sql } from "postgres";

/** What happened to messages, counted per queue and minute (counts.ts). */
export type CountKind = "sent" | "acked" | "retried" | "dead" | "dropped";

export type ContentType = "json" | "text" | "bytes" | "v8";
export const CONTENT_TYPES: readonly ContentType[] = ["json", "text", "bytes", "v8"];

/** A message as a producer sends it, serialized by workerd. */
export interface NewMessage {
  body: Buffer;
  contentType: ContentType;
  /** Seconds before it may be delivered. */
  delaySeconds: number;
}

/** A message claimed for one delivery. */
export interface ClaimedMessage {
  id: string;
  body: Buffer;
  contentType: ContentType;
  /** Deliveries so far, this one included (Cloudflare's `attempts`). */
  attempts: number;
  /** When it was sent (ms since the epoch). */
  timestamp: number;
}

export interface Claim {
  /** The delivery's lease: every change to its messages names it. */
  lease: string;
  messages: ClaimedMessage[];
}

/** What to do with each message of a delivery. */
export interface Settlement {
  acked: string[];
  retried: { id: string; delaySeconds: number }[];
  /** Out of retries: moved to `deadLetterQueue`, or deleted when there is none. */
  dead: string[];
  deadLetterQueue?: string;
  /** Why the dead ones failed (the handler's error, or "retried N times"). */
  reason?: string;
}

export interface QueueFigures {
  queue: string;
  /** Ready now (including messages whose lease ran out). */
  ready: number;
  inFlight: number;
  delayed: number;
  /** Age of the oldest message not in flight, in ms (0 when none). */
  oldestMs: number;
  bytes: number;
}

interface ClaimRow {
  id: string;
  body: Buffer;
  content_type: ContentType;
  attempts: number;
  created_at: Date;
}

/** The SQL behind the queues; one per process, sharing the caller's connection pool. */
export class QueueStore {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  /** Stores messages of one or more queues in one statement (one transaction): all of them are stored, or none. */
  async send(messages: (NewMessage & { queue: string })[]): Promise<string[]> {
    if (messages.length === 0) return [];
    const ids = messages.map(() => randomUUID());
    await this.#sql`
      INSERT INTO workyard.queue_messages (id, queue, body, content_type, visible_at)
      SELECT id, queue, body, content_type, now() + delay * interval '1 second'
      FROM unnest(${ids}::uuid[], ${messages.map((m) => m.queue)}::text[], ${messages.map((m) => m.body)}::bytea[],
                  ${messages.map((m) => m.contentType)}::text[], ${messages.map((m) => m.delaySeconds)}::int[])
           AS t(id, queue, body, content_type, delay)`;
    return ids;
  }

  /**
   * Claims up to `max` ready messages of `queue` (oldest first) for one delivery, holding them for `leaseMs`: other
   * claims skip them (SKIP LOCKED) while this one runs, and pass over them until the lease ends. Claims nothing until
   * a whole batch is ready or the oldest ready message has waited `batchTimeoutMs` (max_batch_timeout).
   */
  async claim(queue: string, max: number, leaseMs: number, batchTimeoutMs = 0): Promise<Claim> {
    const lease = randomUUID();
    const rows = await this.#sql<ClaimRow[]>`
      WITH ready AS (
        SELECT id, visible_at FROM workyard.queue_messages
        WHERE queue = ${queue} AND visible_at <= now()
        ORDER BY visible_at, created_at
        LIMIT ${max}
        FOR UPDATE SKIP LOCKED
      )
      UPDATE workyard.queue_messages m
      SET attempts = m.attempts + 1, lease = ${lease}::uuid, visible_at = now() + ${leaseMs} * interval '1 millisecond'
      FROM ready
      WHERE m.id = ready.id
        AND ((SELECT count(*) FROM ready) >= ${max}
             OR (SELECT min(visible_at) FROM ready) <= now() - ${batchTimeoutMs} * interval '1 millisecond')
      RETURNING m.id, m.body, m.content_type, m.attempts, m.created_at`;
    const messages = rows
      .map((r) => ({ id: r.id, body: r.body, contentType: r.content_type, attempts: r.attempts, timestamp: r.created_at.getTime() }))
      .sort((a, b) => a.timestamp - b.timestamp);
    return { lease, messages };
  }

  /**
   * Milliseconds until a claim of `queue` could take something: the oldest ready message's batch timeout, or the
   * next delayed (or leased) message becoming ready; undefined when the queue is empty.
   */
  async dueIn(queue: string, batchTimeoutMs: number): Promise<number | undefined> {
    const [row] = await this.#sql<{ ready_due: number | null; next_visible: number | null }[]>`
      SELECT
        (SELECT extract(epoch FROM min(visible_at) - now())::float8 * 1000 + ${batchTimeoutMs}
         FROM workyard.queue_messages WHERE queue = ${queue} AND visible_at <= now()) AS ready_due,
        (SELECT extract(epoch FROM min(visible_at) - now())::float8 * 1000
         FROM workyard.queue_messages WHERE queue = ${queue} AND visible_at > now()) AS next_visible`;
    const due = [row?.ready_due, row?.next_visible].filter((v): v is number => typeof v === "number");
    return due.length === 0 ? undefined : Math.max(0, Math.min(...due));
  }

  /** Applies a delivery's outcome, in one transaction, to the messages the delivery still holds. */
  async settle(lease: string, s: Settlement): Promise<void> {
    await this.#sql.begin(async (tx) => {
      if (s.acked.length > 0) {
        await tx`DELETE FROM workyard.queue_messages WHERE lease = ${lease}::uuid AND id = ANY(${s.acked}::uuid[])`;
      }
      if (s.retried.length > 0) {
        await tx`
          UPDATE workyard.queue_messages m SET lease = NULL, visible_at = now() + r.delay * interval '1 second'
          FROM unnest(${s.retried.map((r) => r.id)}::uuid[], ${s.retried.map((r) => r.delaySeconds)}::int[]) AS r(id, delay)
          WHERE m.id = r.id AND m.lease = ${lease}::uuid`;
      }
      if (s.dead.length > 0 && s.deadLetterQueue) {
        await tx`
          UPDATE workyard.queue_messages
          SET failed_queue = queue, queue = ${s.deadLetterQueue}, failed_reason = ${s.reason ?? null},
              lease = NULL, visible_at = now(), attempts = 0
          WHERE lease = ${lease}::uuid AND id = ANY(${s.dead}::uuid[])`;
      } else if (s.dead.length > 0) {
        await tx`DELETE FROM workyard.queue_messages WHERE lease = ${lease}::uuid AND id = ANY(${s.dead}::uuid[])`;
      }
    });
  }

  /**
   * Gives a delivery's messages back without counting the attempt (the consumer was never reached: workerd not
   * answering, a deploy in between): ready again at once.
   */
  async release(lease: string): Promise<void> {
    await this.#sql`
      UPDATE workyard.queue_messages SET lease = NULL, visible_at = now(), attempts = greatest(attempts - 1, 0)
      WHERE lease = ${lease}::uuid`;
  }

  /** Paused queues. */
  async paused(): Promise<Set<string>> {
    const rows = await this.#sql<{ queue: string }[]>`SELECT queue FROM workyard.queue_paused`;
    return new Set(rows.map((r) => r.queue));
  }

  async setPaused(queue: string, paused: boolean): Promise<void> {
    if (paused) await this.#sql`INSERT INTO workyard.queue_paused (queue) VALUES (${queue}) ON CONFLICT DO NOTHING`;
    else await this.#sql`DELETE FROM workyard.queue_paused WHERE queue = ${queue}`;
  }

  /** Depth, in flight, delayed and oldest age of every queue that holds a message. */
  async figures(): Promise<QueueFigures[]> {
    const rows = await this.#sql<
      { queue: string; ready: string; in_flight: string; delayed: string; oldest_ms: number | null; bytes: string }[]
    >`
      SELECT queue,
             count(*) FILTER (WHERE visible_at <= now()) AS ready,
             count(*) FILTER (WHERE lease IS NOT NULL AND visible_at > now()) AS in_flight,
             count(*) FILTER (WHERE lease IS NULL AND visible_at > now()) AS delayed,
             extract(epoch FROM now() - min(created_at) FILTER (WHERE lease IS NULL OR visible_at <= now()))::float8 * 1000 AS oldest_ms,
             coalesce(sum(octet_length(body)), 0) AS bytes
      FROM workyard.queue_messages GROUP BY queue ORDER BY queue`;
    return rows.map((r) => ({
      queue: r.queue,
      ready: Number(r.ready),
      inFlight: Number(r.in_flight),
      delayed: Number(r.delayed),
      oldestMs: Math.max(0, Math.round(r.oldest_ms ?? 0)),
      bytes: Number(r.bytes),
    }));
  }

  /** Deletes counts older than `days`. */
  async pruneCounts(days: number): Promise<void> {
    await this.#sql`DELETE FROM workyard.queue_counts WHERE minute < now() - ${days} * interval '1 day'`;
  }

  /** Adds counts for `queue` to the current minute. */
  async count(queue: string, c: Partial<Record<CountKind, number>>): Promise<void> {
    const v = { sent: 0, acked: 0, retried: 0, dead: 0, dropped: 0, ...c };
    await this.#sql`
      INSERT INTO workyard.queue_counts (queue, minute, sent, acked, retried, dead, dropped)
      VALUES (${queue}, date_trunc('minute', now()), ${v.sent}, ${v.acked}, ${v.retried}, ${v.dead}, ${v.dropped})
      ON CONFLICT (queue, minute) DO UPDATE SET
        sent = queue_counts.sent + excluded.sent, acked = queue_counts.acked + excluded.acked,
        retried = queue_counts.retried + excluded.retried, dead = queue_counts.dead + excluded.dead,
        dropped = queue_counts.dropped + excluded.dropped`;
  }

  /** The first `limit` messages of `queue`, oldest first, with the start of each body. */
  async peek(queue: string, limit: number): Promise<PeekedMessage[]> {
    const rows = await this.#sql<
      {
        id: string;
        content_type: ContentType;
        attempts: number;
        created_at: Date;
        visible_at: Date;
        in_flight: boolean;
        failed_queue: string | null;
        failed_reason: string | null;
        head: Buffer;
        bytes: number;
      }[]
    >`
      SELECT id, content_type, attempts, created_at, visible_at, (lease IS NOT NULL AND visible_at > now()) AS in_flight,
             failed_queue, failed_reason, substring(body FROM 1 FOR 200) AS head, octet_length(body) AS bytes
      FROM workyard.queue_messages WHERE queue = ${queue} ORDER BY created_at LIMIT ${limit}`;
    return rows.map((r) => ({
      id: r.id,
      contentType: r.content_type,
      attempts: r.attempts,
      createdAt: r.created_at,
      visibleAt: r.visible_at,
      inFlight: r.in_flight,
      failedQueue: r.failed_queue,
      failedReason: r.failed_reason,
      head: r.head,
      bytes: r.bytes,
    }));
  }

  /**
   * Moves the dead letters in `queue` back to the queues they failed in, with their attempts reset; returns how many.
   * One that a consumer of the dead-letter queue holds now stays where it is.
   */
  async redrive(queue: string): Promise<number> {
    const rows = await this.#sql`
      UPDATE workyard.queue_messages
      SET queue = failed_queue, failed_queue = NULL, failed_reason = NULL, attempts = 0, lease = NULL, visible_at = now()
      WHERE queue = ${queue} AND failed_queue IS NOT NULL AND (lease IS NULL OR visible_at <= now())
      RETURNING id`;
    return rows.length;
  }

  /** Deletes every message of `queue` (in flight ones too: their outcome then finds nothing); returns how many. */
  async purge(queue: string): Promise<number> {
    const rows = await this.#sql`DELETE FROM workyard.queue_messages WHERE queue = ${queue} RETURNING id`;
    return rows.length;
  }

  /** Dead letters (messages moved here from the queue they failed in), by queue. */
  async deadLetters(): Promise<Map<string, number>> {
    const rows = await this.#sql<{ queue: string; n: number }[]>`
      SELECT queue, count(*)::int AS n FROM workyard.queue_messages WHERE failed_queue IS NOT NULL GROUP BY queue`;
    return new Map(rows.map((r) => [r.queue, r.n]));
  }

  /** Counts over this minute and the `minutes - 1` before it, by queue (every node's, from queue_counts). */
  async recentCounts(minutes: number): Promise<Map<string, Record<CountKind, number>>> {
    const rows = await this.#sql<{ queue: string; sent: string; acked: string; retried: string; dead: string; dropped: string }[]>`
      SELECT queue, sum(sent) AS sent, sum(acked) AS acked, sum(retried) AS retried, sum(dead) AS dead, sum(dropped) AS dropped
      FROM workyard.queue_counts WHERE minute > date_trunc('minute', now()) - ${minutes} * interval '1 minute'
      GROUP BY queue`;
    return new Map(
      rows.map((r) => [
        r.queue,
        { sent: Number(r.sent), acked: Number(r.acked), retried: Number(r.retried), dead: Number(r.dead), dropped: Number(r.dropped) },
      ]),
    );
  }
}

export interface PeekedMessage {
  id: string;
  contentType: ContentType;
  attempts: number;
  createdAt: Date;
  visibleAt: Date;
  inFlight: boolean;
  failedQueue: string | null;
  failedReason: string | null;
  /** The first 200 bytes of the body. */
  head: Buffer;
  bytes: number;
}
