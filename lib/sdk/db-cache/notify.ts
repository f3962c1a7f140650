/**
 * The notification that tells every read cache which tables a write changed (lib/workers/db-cache/host-cache.ts
 * listens for it): one
 * `pg_notify` on the notify channel, with the sender's origin (so a host skips its own) and the tables, or every
 * table when the list would not fit (PostgreSQL's payload limit is 8000 bytes).
 */
import type { Sql } from "postgres";
import { ANY_TABLE, DB_CACHE_NOTIFY_CHANNEL } from "../../shared/db-cache-event.ts";
import { observedPool } from "./observed-pool.ts";
import { statementEffect } from "./statement.ts";

/** The message's parts: who sent it, and the tables (ANY_TABLE: all of them) or a probe's nonce. */
export interface CacheNotification {
  o: string;
  t?: readonly string[] | typeof ANY_TABLE;
  probe?: string;
}

/** Sends `message` through `sql` (any connection: NOTIFY is delivered when its implicit transaction commits). */
export async function sendNotification(sql: Sql, message: CacheNotification): Promise<void> {
  let payload = JSON.stringify(message);
  if (new TextEncoder().encode(payload).length > 7000) payload = JSON.stringify({ o: message.o, t: ANY_TABLE });
  await sql`select pg_notify(${DB_CACHE_NOTIFY_CHANNEL}, ${payload})`;
}

/**
 * A client whose writes are told to the read caches, for work outside a host's pool (withDatabase in a scheduled()
 * or queue() handler): each write (or transaction) sends its notification before its `await` returns. It keeps no
 * cache of its own.
 */
export function notifyingClient(sql: Sql): Sql {
  const origin = crypto.randomUUID();
  return observedPool(sql, statementEffect, async (tables) => {
    try {
      await sendNotification(sql, { o: origin, t: tables === "all" ? ANY_TABLE : tables });
    } catch (err) {
      console.error(
        `read cache: could not tell the function hosts about a write (${(err as Error).message}); their cached reads of it last until their max age`,
      );
    }
  });
}
