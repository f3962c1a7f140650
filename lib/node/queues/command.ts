/**
 * `npm run queues`: each queue's depth, in flight, delayed, dead letters, oldest message's age and last-5-minute
 * throughput; and peek, redrive (dead letters back to the queue they failed in), purge, pause and resume. It reads
 * DATABASE_URL or the embedded database (through npm start's server for it while that runs), so a pause reaches
 * the running dispatchers within their poll interval.
 */
import type { Sql } from "postgres";
import { UserError } from "../common/user-error.ts";
import { QUEUE_NAME } from "../build/wrangler-config.ts";
import { QueueStore } from "./store.ts";

export const QUEUES_USAGE = `usage: npm run queues [-- <command>]
  (none)                 every queue: ready, in flight, delayed, dead letters, oldest message's age, throughput
  peek <queue> [--limit N]   the oldest messages of a queue (default 10), with the start of each body
  redrive <dead-letter-queue>  moves its messages back to the queues they failed in, attempts reset
  purge <queue>          deletes every message of a queue
  pause <queue>          stops delivering a queue (messages wait); resume <queue> starts again`;

const age = (ms: number) => (ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);

function queueName(arg: string | undefined): string {
  if (!arg || !QUEUE_NAME.test(arg)) throw new UserError(`name a queue (lowercase letters, digits and -): ${QUEUES_USAGE}`);
  return arg;
}

/** Runs one queues command against `sql`; returns the lines to print. */
export async function queuesCommand(sql: Sql, command: string | undefined, arg: string | undefined, limit: number): Promise<string[]> {
  const store = new QueueStore(sql);
  try {
    return await run(store, command, arg, limit);
  } catch (err) {
    if ((err as { code?: string }).code === "42P01") {
      throw new UserError("This database has no queue tables yet: start workyard once (npm start), which creates them.", { cause: err });
    }
    throw err;
  }
}

async function run(store: QueueStore, command: string | undefined, arg: string | undefined, limit: number): Promise<string[]> {
  switch (command) {
    case undefined:
    case "list": {
      const [figures, dead, counts, paused] = await Promise.all([
        store.figures(),
        store.deadLetters(),
        store.recentCounts(5),
        store.paused(),
      ]);
      const names = [...new Set([...figures.map((f) => f.queue), ...counts.keys(), ...paused])].sort();
      if (names.length === 0) return ["no queue holds a message or has been used in the last 5 minutes"];
      const rows = names.map((q) => {
        const f = figures.find((x) => x.queue === q);
        const c = counts.get(q);
        return [
          q + (paused.has(q) ? " (paused)" : ""),
          String(f?.ready ?? 0),
          String(f?.inFlight ?? 0),
          String(f?.delayed ?? 0),
          String(dead.get(q) ?? 0),
          f && f.oldestMs > 0 ? age(f.oldestMs) : "-",
          c ? `${c.sent} sent, ${c.acked} acked, ${c.retried} retried, ${c.dead + c.dropped} failed` : "-",
        ];
      });
      const header = ["queue", "ready", "in flight", "delayed", "dead letters", "oldest", "last 5 min"];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
      return [header, ...rows].map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd(),
      );
    }
    case "peek": {
      const messages = await store.peek(queueName(arg), limit);
      if (messages.length === 0) return [`"${arg}" holds no message`];
      return messages.map((m) => {
        const state = m.inFlight
          ? "in flight"
          : m.visibleAt.getTime() > Date.now()
            ? `delayed until ${m.visibleAt.toISOString()}`
            : "ready";
        const body = m.contentType === "json" || m.contentType === "text" ? m.head.toString("utf8") : `<${m.bytes} bytes ${m.contentType}>`;
        const failed = m.failedQueue ? `  failed in "${m.failedQueue}": ${m.failedReason ?? ""}` : "";
        return `${m.id}  ${m.createdAt.toISOString()}  attempts ${m.attempts}  ${state}${failed}\n  ${body}${m.bytes > m.head.length ? "…" : ""}`;
      });
    }
    case "redrive": {
      const n = await store.redrive(queueName(arg));
      return [n === 0 ? `"${arg}" holds no dead letters` : `moved ${n} message(s) from "${arg}" back to the queues they failed in`];
    }
    case "purge":
      return [`deleted ${await store.purge(queueName(arg))} message(s) from "${arg}"`];
    case "pause":
      await store.setPaused(queueName(arg), true);
      return [`paused "${arg}": its messages wait until npm run queues -- resume ${arg}`];
    case "resume":
      await store.setPaused(queueName(arg), false);
      return [`resumed "${arg}"`];
    default:
      throw new UserError(`unknown command "${command}"\n${QUEUES_USAGE}`);
  }
}
