/**
 * The queue rows: the same background job done two ways on the same PostgreSQL (a scratch database each):
 *   - workyard: POST to a function that calls env.JOBS.send() (stored in PostgreSQL before it answers); the
 *     dispatcher delivers batches of 10 to the function's queue() in workerd, which reports and acks them
 *   - pg-boss 12 (the well-kept PostgreSQL job queue for Node) at its fastest: POST to a Node server that calls
 *     boss.send(); a boss.work() worker (batches of 10, 4 at once, woken by LISTEN/NOTIFY, fetching on without a
 *     pause while batches come back full, else its shortest poll of 0.5 s) reports and completes them
 * Each side is measured twice: throughput (N messages sent by 32 concurrent clients as fast as they are accepted;
 * messages per second from the first send to the last handler start) and latency at a moderate load (a fixed rate
 * for a few seconds; send() to handler start, p50 and p99). CPU is the whole machine's (/proc/stat), per 1,000
 * messages, over the throughput run: both sides' processes and PostgreSQL's, and the load generator.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PgBoss } from "pg-boss";
import type { ProjectPaths } from "../common/paths.ts";
import { projectPaths } from "../common/paths.ts";
import { migrateUp } from "../data/migrations.ts";
import { startSupervisor } from "../runtime/supervisor.ts";
import { createScratchDatabase, findPostgres } from "./database.ts";
import { buildBenchProject, Teardown } from "./project.ts";

export interface QueueBenchOptions {
  paths: ProjectPaths;
  log: (line: string) => void;
  /** Messages in the throughput run. */
  messages?: number;
  /** Messages per second in the latency run, and for how long. */
  rate?: number;
  rateSeconds?: number;
  env?: NodeJS.ProcessEnv;
}

export interface QueueBenchRow {
  name: string;
  /** Messages per second, first send to last handler start, under 32 concurrent senders. */
  throughput: number;
  /** send() to handler start at `rate` messages per second. */
  p50Ms: number;
  p99Ms: number;
  /** Machine CPU milliseconds per 1,000 messages in the throughput run. */
  cpuMsPer1000: number;
  sent: number;
  handled: number;
}

const FN = "queue-bench";
const fixture = fileURLToPath(new URL("./queue-bench/", import.meta.url));
const SENDERS = 32;

/** A receiver of handler-start reports: [i, sentAt, startedAt] rows. */
async function startReceiver(): Promise<{ url: string; rows: Map<number, [number, number]>; server: Server }> {
  const rows = new Map<number, [number, number]>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      for (const [i, sentAt, startedAt] of JSON.parse(Buffer.concat(chunks).toString("utf8")) as [number, number, number][]) {
        if (!rows.has(i)) rows.set(i, [sentAt, startedAt]);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, rows, server };
}

/** Busy jiffies of the whole machine (all CPUs), from /proc/stat. */
function machineBusyMs(): number {
  const [cpu] = readFileSync("/proc/stat", "utf8").split("\n");
  const f = (cpu ?? "").split(/\s+/).slice(1).map(Number);
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy * 10; // USER_HZ is 100 on Linux
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

/** Sends messages first..first+n-1 through `url` with SENDERS concurrent clients; answers how many were accepted. */
async function sendAll(url: string, first: number, n: number): Promise<number> {
  let next = first;
  let accepted = 0;
  const end = first + n;
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      while (next < end) {
        const i = next++;
        const res = await fetch(url, { method: "POST", body: JSON.stringify({ i }), headers: { "content-type": "application/json" } });
        await res.arrayBuffer();
        if (res.ok) accepted++;
      }
    }),
  );
  return accepted;
}

/** Sends at `rate` a second for `seconds`, from index `first`; answers how many were accepted. */
async function sendAtRate(url: string, first: number, rate: number, seconds: number): Promise<number> {
  const total = rate * seconds;
  const started = performance.now();
  const sends: Promise<boolean>[] = [];
  for (let k = 0; k < total; k++) {
    const due = started + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sends.push(
      fetch(url, { method: "POST", body: JSON.stringify({ i: first + k }), headers: { "content-type": "application/json" } }).then(
        async (res) => {
          await res.arrayBuffer();
          return res.ok;
        },
      ),
    );
  }
  return (await Promise.all(sends)).filter(Boolean).length;
}

/** Runs both measurements against one side (a URL that sends message {i}; reports arrive in `rows`). */
async function measure(
  name: string,
  url: string,
  rows: Map<number, [number, number]>,
  { messages, rate, rateSeconds }: Required<Pick<QueueBenchOptions, "messages" | "rate" | "rateSeconds">>,
  log: (line: string) => void,
): Promise<QueueBenchRow> {
  // Warm up: connections, JIT, the first batches.
  await sendAll(url, 1_000_000, 200);
  await waitFor(() => [...rows.keys()].filter((i) => i >= 1_000_000).length >= 200, 30_000);
  rows.clear();

  const cpuBefore = machineBusyMs();
  const started = Date.now();
  const sent = await sendAll(url, 0, messages);
  await waitFor(() => rows.size >= sent, 120_000);
  const lastStart = Math.max(...[...rows.values()].map(([, s]) => s));
  const cpuMs = machineBusyMs() - cpuBefore;
  const throughput = rows.size / ((lastStart - started) / 1000);
  const handled = rows.size;
  log(`  ${name}: ${handled}/${sent} messages handled, ${throughput.toFixed(0)} per second`);

  rows.clear();
  const sentAtRate = await sendAtRate(url, 2_000_000, rate, rateSeconds);
  await waitFor(() => rows.size >= sentAtRate, 30_000);
  const latencies = [...rows.values()].map(([sentAt, startedAt]) => startedAt - sentAt).sort((a, b) => a - b);
  rows.clear();
  return {
    name,
    throughput,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMsPer1000: (cpuMs / Math.max(handled, 1)) * 1000,
    sent,
    handled,
  };
}

/** The queue rows; none (with the reason logged) without a PostgreSQL to make scratch databases in. */
export async function queueBench({
  paths,
  log,
  messages = 5000,
  rate = 100,
  rateSeconds = 5,
  env = process.env,
}: QueueBenchOptions): Promise<QueueBenchRow[]> {
  const found = await findPostgres(paths, env, log);
  if ("skip" in found) {
    log(`queue rows skipped: ${found.skip}`);
    return [];
  }
  const load = { messages, rate, rateSeconds };
  const rowsOut: QueueBenchRow[] = [];
  const teardown = new Teardown();
  try {
    log("\nqueues: the same job through workyard's queue and through pg-boss, on the same PostgreSQL");
    const receiver = await startReceiver();
    teardown.add(() => new Promise((resolve) => receiver.server.close(() => resolve())));

    // workyard: the bench project's function through the gateway, as npm start serves it.
    await buildBenchProject(paths, FN, fixture);
    const db = await createScratchDatabase(found.url);
    teardown.add(() => db.drop());
    const benchPaths = projectPaths(join(paths.work, "bench", `${FN}-project`));
    await migrateUp(db.url, benchPaths.migrations);
    const sup = await startSupervisor({
      paths: benchPaths,
      host: "127.0.0.1",
      port: 0,
      env: { DATABASE_URL: db.url, REPORT_URL: receiver.url, WORKYARD_SCHEDULER: "off", WORKYARD_LOG: "off" },
      log: () => {},
    });
    teardown.add(() => sup.stop());
    rowsOut.push(await measure("workyard queue (send() in a function, queue() in workerd)", `${sup.url}/${FN}`, receiver.rows, load, log));
    await teardown.run();

    // pg-boss: the same work in Node.
    const receiver2 = await startReceiver();
    teardown.add(() => new Promise((resolve) => receiver2.server.close(() => resolve())));
    const db2 = await createScratchDatabase(found.url);
    teardown.add(() => db2.drop());
    const boss = new PgBoss({ connectionString: db2.url, max: 10 });
    boss.on("error", (err: Error) => log(`  pg-boss: ${err.message}`));
    await boss.start();
    teardown.add(() => boss.stop({ graceful: false, timeout: 5000 }));
    await boss.createQueue("bench", { notify: true });
    await boss.work<{ i: number; sentAt: number }>(
      "bench",
      { batchSize: 10, localConcurrency: 4, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true },
      async (jobs) => {
        const startedAt = Date.now();
        const res = await fetch(receiver2.url, {
          method: "POST",
          body: JSON.stringify(jobs.map((j) => [j.data.i, j.data.sentAt, startedAt])),
        });
        await res.arrayBuffer();
      },
    );
    const producer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const { i } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { i: number };
        boss
          .send("bench", { i, sentAt: Date.now() })
          .then(() => res.writeHead(200).end("sent"))
          .catch((err: unknown) => res.writeHead(503).end((err as Error).message));
      });
    });
    await new Promise<void>((resolve) => producer.listen(0, "127.0.0.1", resolve));
    teardown.add(() => new Promise((resolve) => producer.close(() => resolve())));
    const producerUrl = `http://127.0.0.1:${(producer.address() as AddressInfo).port}/`;
    rowsOut.push(await measure("pg-boss 12 (boss.send() in Node, boss.work() batches)", producerUrl, receiver2.rows, load, log));
  } finally {
    await teardown.run().catch((err: unknown) => log(`queue bench cleanup: ${(err as Error).message}`));
  }
  return rowsOut;
}

/** The queue rows as a Markdown table, with the ratio to pg-boss and the design's targets. */
export function queueTable(rows: QueueBenchRow[]): string {
  if (rows.length === 0) return "";
  const [ours, boss] = rows;
  const lines = [
    "| queue setup | messages/s | p50 send→handler | p99 send→handler | machine CPU ms / 1,000 msgs | handled |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.throughput.toFixed(0)} | ${r.p50Ms} ms | ${r.p99Ms} ms | ${r.cpuMsPer1000.toFixed(0)} | ${r.handled}/${r.sent} |`,
    ),
  ];
  if (ours && boss) {
    const ratio = ours.throughput / boss.throughput;
    lines.push(
      "",
      `queue throughput workyard / pg-boss: ${ratio.toFixed(2)}x (target >= 1.0: ${ratio >= 1 ? "PASS" : "BELOW TARGET"}); ` +
        `workyard p50 ${ours.p50Ms} ms (target < 50 ms: ${ours.p50Ms < 50 ? "PASS" : "BELOW TARGET"})`,
    );
  }
  return lines.join("\n");
}
