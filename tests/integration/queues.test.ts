/**
 * Queues through the real stack (workerd's queue binding → the queue service → PostgreSQL → the dispatcher → the
 * consumer's real queue() in workerd): the example (links sends an event for each new link, webhooks delivers it to
 * an outside endpoint, a real HTTP server here, with retries and a dead-letter queue), and a probe fixture for the
 * wire format (content types, delays, batches, limits) and Cloudflare's semantics (ack/retry/throw, max_retries,
 * a handler that hangs past its deadline).
 */
import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { needs } from "../helpers/needs.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";
import { queuesCommand } from "../../lib/node/queues/command.ts";
import { GroupCommit } from "../../lib/node/queues/group-commit.ts";
import { QueueStore } from "../../lib/node/queues/store.ts";
import { bearer, signUp } from "../helpers/auth.ts";
import type { SignedUp } from "../helpers/auth.ts";
import { startStack } from "../helpers/stack.ts";
import type { Stack } from "../helpers/stack.ts";

interface Received {
  /** When it arrived (ms). */
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A real HTTP server on a free loopback port that records what it receives and answers per test's wish. */
const received: Received[] = [];
/** Link URLs the endpoint fails for: how many more times (Infinity: always). */
const failing = new Map<string, number>();
let receiver: Server;
let receiverUrl: string;
let stack: Stack;
let user: SignedUp;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
      received.push({ at: Date.now(), path: req.url ?? "", headers: req.headers, body });
      const left = failing.get(String(body.url));
      if (left !== undefined && left > 0) {
        failing.set(String(body.url), left - 1);
        res.writeHead(500).end("failing on purpose");
      } else res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  stack = await startStack({
    fixtures: ["queue-probe"],
    vars: {
      // The endpoint's breaker never opens here (tests/integration/outbound.test.ts tests it): each failure is delivered again.
      webhooks: { WEBHOOK_URL: `${receiverUrl}/hook`, WEBHOOK_RETRY_BASE_SECONDS: "0", failures: 1000, max_retries: 5 },
      "queue-probe": { REPORT_URL: `${receiverUrl}/report` },
    },
    env: { WORKYARD_QUEUE_POLL_MS: "200" },
  });
  user = await signUp(stack.sup.url);
});

afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

async function createLink(url: string): Promise<string> {
  const r = await stack.call("/links", json({ url }, bearer(user.accessToken)));
  expect(r.status).toBe(201);
  return (r.body as unknown as { code: string }).code;
}

const hooksFor = (url: string) => received.filter((r) => r.path === "/hook" && r.body.url === url);
const reportsWhere = (match: (body: Record<string, unknown>) => boolean) => received.filter((r) => r.path === "/report" && match(r.body));

describe("the example: links → link-events → webhooks → an outside endpoint", () => {
  it("delivers a new link's event, with the message id the receiver can deduplicate on", async () => {
    const url = `https://example.com/${crypto.randomUUID()}`;
    const code = await createLink(url);
    await expect.poll(() => hooksFor(url).length, { timeout: 10_000 }).toBe(1);
    const [hook] = hooksFor(url);
    expect(hook?.body).toMatchObject({ type: "link.created", code, url });
    expect(hook?.headers["webhook-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(hook?.headers["webhook-attempt"]).toBe("1");
    // Acked: gone from the queue.
    await expect
      .poll(
        async () =>
          (await stack.sql`select count(*)::int as n from workyard.queue_messages where id = ${hook?.headers["webhook-id"] as string}`)[0]
            ?.n,
      )
      .toBe(0);
  });

  it("retries an endpoint that fails, with the same id and attempts counted", async () => {
    const url = `https://example.com/${crypto.randomUUID()}`;
    failing.set(url, 2);
    await createLink(url);
    await expect.poll(() => hooksFor(url).length, { timeout: 15_000 }).toBe(3);
    const hooks = hooksFor(url);
    expect(new Set(hooks.map((h) => h.headers["webhook-id"])).size).toBe(1);
    expect(hooks.map((h) => h.headers["webhook-attempt"])).toEqual(["1", "2", "3"]);
  });

  it("moves an event whose endpoint never succeeds to the dead-letter queue after max_retries", async () => {
    const url = `https://example.com/${crypto.randomUUID()}`;
    failing.set(url, Infinity);
    await createLink(url);
    // max_retries = 5: six deliveries, then link-events-dead.
    await expect.poll(() => hooksFor(url).length, { timeout: 20_000 }).toBe(6);
    const id = hooksFor(url)[0]?.headers["webhook-id"] as string;
    await expect
      .poll(async () => (await stack.sql`select queue, failed_queue, failed_reason from workyard.queue_messages where id = ${id}`)[0], {
        timeout: 5000,
      })
      .toMatchObject({ queue: "link-events-dead", failed_queue: "link-events", failed_reason: expect.stringMatching(/retried/) });
    await new Promise((r) => setTimeout(r, 500));
    expect(hooksFor(url)).toHaveLength(6); // nothing consumes the dead-letter queue
  });

  it("stores the event before answering 201 (a paused consumer leaves it waiting), and delivers it on resume", async () => {
    await stack.sup.queues.store.setPaused("link-events", true);
    try {
      await new Promise((r) => setTimeout(r, 1000)); // the dispatcher sees the pause within its poll interval (200 ms)
      const url = `https://example.com/${crypto.randomUUID()}`;
      await createLink(url);
      const rows =
        await stack.sql`select queue, content_type, attempts from workyard.queue_messages where convert_from(body, 'UTF8') like ${`%${url}%`}`;
      expect(rows).toEqual([{ queue: "link-events", content_type: "json", attempts: 0 }]);
      await new Promise((r) => setTimeout(r, 600));
      expect(hooksFor(url)).toHaveLength(0);
      await stack.sup.queues.store.setPaused("link-events", false);
      await expect.poll(() => hooksFor(url).length, { timeout: 10_000 }).toBe(1);
    } finally {
      await stack.sup.queues.store.setPaused("link-events", false);
    }
  });
});

describe("group commit", () => {
  it("stores sends that arrive together in a few statements, each caller resolved once its messages are committed", async () => {
    const real = new QueueStore(stack.sql);
    const statements: number[] = [];
    const counting = { send: (rows: Parameters<QueueStore["send"]>[0]) => (statements.push(rows.length), real.send(rows)) } as QueueStore;
    const commits = new GroupCommit(counting);
    const queue = `group-${crypto.randomUUID().slice(0, 8)}`;
    const message = (i: number) => ({ body: Buffer.from(JSON.stringify({ i })), contentType: "json" as const, delaySeconds: 3600 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => commits.send(queue, [message(i)])));
    expect(statements.reduce((a, b) => a + b, 0)).toBe(50);
    expect(statements.length).toBeLessThan(10); // two at once, the rest grouped behind them
    expect(await stack.sql`select count(*)::int as n from workyard.queue_messages where queue = ${queue}`).toEqual([{ n: 50 }]);
    // A statement that fails fails every send in it, and stores none of them.
    const failing = new GroupCommit({ send: () => Promise.reject(new Error("the database went away")) } as unknown as QueueStore);
    const results = await Promise.allSettled([failing.send(queue, [message(1)]), failing.send(queue, [message(2)])]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    await stack.sql`delete from workyard.queue_messages where queue = ${queue}`;
  });
});

describe("the wire format and Cloudflare's semantics (probe fixture)", () => {
  const send = (body: unknown) => stack.call("/queue-probe/send", json(body));

  it("carries json, text, bytes and v8 bodies as the consumer expects them", async () => {
    const tag = crypto.randomUUID();
    expect((await send({ body: { tag, n: 1 } })).body).toEqual({ sent: true });
    expect((await send({ body: `text ${tag}`, contentType: "text" })).body).toEqual({ sent: true });
    expect((await send({ contentType: "bytes" })).body).toEqual({ sent: true });
    expect((await send({ map: true, contentType: "v8" })).body).toEqual({ sent: true });
    await expect.poll(() => reportsWhere((b) => (b.value as { tag?: string })?.tag === tag).length, { timeout: 10_000 }).toBe(1);
    expect(reportsWhere((b) => (b.value as { tag?: string })?.tag === tag)[0]?.body).toMatchObject({
      type: "object",
      attempts: 1,
      queue: "probe",
    });
    await expect.poll(() => reportsWhere((b) => b.value === `text ${tag}`).length).toBe(1);
    await expect.poll(() => reportsWhere((b) => b.type === "Uint8Array").length).toBeGreaterThan(0);
    expect(reportsWhere((b) => b.type === "Uint8Array")[0]?.body.value).toEqual([1, 2, 3]);
    await expect.poll(() => reportsWhere((b) => b.type === "Map").length).toBeGreaterThan(0);
    expect(reportsWhere((b) => b.type === "Map")[0]?.body.value).toEqual([["key", "value"]]);
  });

  it("delivers a batch of up to max_batch_size in one queue() call", async () => {
    const tag = crypto.randomUUID();
    expect((await stack.call("/queue-probe/batch", json({ count: 12, body: { tag } }))).body).toEqual({ sent: true });
    const mine = () => reportsWhere((b) => (b.value as { tag?: string })?.tag === tag);
    await expect.poll(() => mine().length, { timeout: 10_000 }).toBe(12);
    expect(Math.max(...mine().map((r) => Number(r.body.size)))).toBe(5);
  });

  it("holds a delayed message until its delay has passed", async () => {
    const tag = crypto.randomUUID();
    const sentAt = Date.now();
    await send({ body: { tag }, delaySeconds: 2 });
    await expect.poll(() => reportsWhere((b) => (b.value as { tag?: string })?.tag === tag).length, { timeout: 10_000 }).toBe(1);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1900);
  });

  it("retries a message the handler retries, or throws on, then dead-letters it after max_retries", async () => {
    for (const outcome of ["retry", "throw"]) {
      const tag = crypto.randomUUID();
      await send({ body: { tag, outcome } });
      const mine = () => reportsWhere((b) => (b.value as { tag?: string })?.tag === tag);
      // max_retries = 2: three deliveries.
      await expect.poll(() => mine().length, { timeout: 10_000 }).toBe(3);
      expect(mine().map((r) => r.body.attempts)).toEqual([1, 2, 3]);
      const id = mine()[0]?.body.id as string;
      await expect
        .poll(async () => (await stack.sql`select queue from workyard.queue_messages where id = ${id}`)[0]?.queue)
        .toBe("probe-dead");
    }
  });

  it("shows dead letters in npm run queues, peeks at them, and redrives them to the queue they failed in", async () => {
    const tag = crypto.randomUUID();
    await send({ body: { tag, outcome: "throw" } });
    const mine = () => reportsWhere((b) => (b.value as { tag?: string })?.tag === tag);
    await expect.poll(() => mine().length, { timeout: 10_000 }).toBe(3);
    const id = mine()[0]?.body.id as string;
    await expect
      .poll(async () => (await stack.sql`select queue from workyard.queue_messages where id = ${id}`)[0]?.queue)
      .toBe("probe-dead");
    const table = await queuesCommand(stack.sql, undefined, undefined, 10);
    expect(table[0]).toMatch(/^queue\s+ready\s+in flight\s+delayed\s+dead letters\s+oldest\s+last 5 min$/);
    expect(table.find((l) => l.startsWith("probe-dead "))).toMatch(/^probe-dead\s+\d+\s+0\s+0\s+[1-9]\d*\s/);
    const peeked = (await queuesCommand(stack.sql, "peek", "probe-dead", 100)).join("\n");
    expect(peeked).toContain(id);
    expect(peeked).toContain(tag);
    expect(peeked).toMatch(/failed in "probe": queue\(\) threw/);
    // The same figures on /metrics (the internal socket), with this node's counts.
    const metrics = await (await fetch(`${stack.sup.internalUrl}/metrics`, { headers: bearer(stack.sup.internalToken) })).text();
    expect(metrics).toMatch(/^workyard_queue_dead_letters\{queue="probe-dead"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^workyard_queue_messages\{queue="probe-dead",state="ready"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^workyard_queue_messages_total\{queue="probe",outcome="sent"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^workyard_queue_messages_total\{queue="probe",outcome="dead"\} [1-9]\d*$/m);
    // And on the dashboard's data: each queue with its consumer.
    const board = (await (await fetch(`${stack.sup.internalUrl}/dashboard/data`, { headers: bearer(stack.sup.internalToken) })).json()) as {
      queues: { queue: string; consumer: string | null; deadLetters: number; sent: number }[];
    };
    expect(board.queues.find((q) => q.queue === "probe")).toMatchObject({ consumer: "queue-probe", sent: expect.any(Number) });
    expect(board.queues.find((q) => q.queue === "link-events")).toMatchObject({ consumer: "webhooks" });
    expect(board.queues.find((q) => q.queue === "probe-dead")).toMatchObject({ consumer: null, deadLetters: expect.any(Number) });
    expect(board.queues.find((q) => q.queue === "probe-dead")?.deadLetters).toBeGreaterThan(0);
    expect((await queuesCommand(stack.sql, "redrive", "probe-dead", 10))[0]).toMatch(/^moved [1-9]\d* message\(s\) from "probe-dead" back/);
    // Delivered again from its first attempt (and, throwing again, dead-lettered again).
    await expect.poll(() => mine().length, { timeout: 10_000 }).toBe(6);
    expect(mine()[3]?.body.attempts).toBe(1);
  });

  it("holds a queue at max_concurrency batches out at once, while other queues keep flowing", async () => {
    // Four batches that hang fill the probe queue's four slots until their deadline (2 s) ends each delivery.
    const hangTag = crypto.randomUUID();
    for (let k = 0; k < 4; k++) {
      await send({ body: { tag: hangTag, outcome: "hang", k } });
      await expect.poll(() => reportsWhere((b) => (b.value as { tag?: string })?.tag === hangTag).length, { timeout: 5000 }).toBe(k + 1);
    }
    const firstHangAt = reportsWhere((b) => (b.value as { tag?: string })?.tag === hangTag)[0]?.at ?? 0;
    const waitingTag = crypto.randomUUID();
    await send({ body: { tag: waitingTag } });
    const url = `https://example.com/${crypto.randomUUID()}`;
    const linkAt = Date.now();
    await createLink(url);
    // Another queue is not held up by this one's full slots: its event arrives at once.
    await expect.poll(() => hooksFor(url).length, { timeout: 5000 }).toBe(1);
    // (webhooks waits up to max_batch_timeout = 1 s for company)
    expect((hooksFor(url)[0]?.at ?? Infinity) - linkAt).toBeLessThan(3000);
    const waiting = () => reportsWhere((b) => (b.value as { tag?: string })?.tag === waitingTag);
    await expect.poll(() => waiting().length, { timeout: 10_000 }).toBe(1);
    // The probe message waited for a slot: delivered only once the first hanging delivery reached its 2 s deadline.
    expect(waiting()[0]?.at).toBeGreaterThanOrEqual(firstHangAt + 1500);
    // The hanging messages would come back after their lease into the next tests' slots: this test's own, deleted.
    await stack.sql`delete from workyard.queue_messages where queue = 'probe' and convert_from(body, 'UTF8') like ${`%${hangTag}%`}`;
  });

  it("delivers again, after its lease, a batch whose handler hangs past queue_timeout_ms", async () => {
    const tag = crypto.randomUUID();
    await send({ body: { tag, outcome: "hang" } });
    const mine = () => reportsWhere((b) => (b.value as { tag?: string })?.tag === tag);
    await expect.poll(() => mine().length, { timeout: 5000 }).toBe(1);
    // queue_timeout_ms 2 s, and a lease 5 s longer: delivered again after about 7 s.
    await expect.poll(() => mine().length, { timeout: 15_000 }).toBe(2);
    expect(mine()[1]?.body.attempts).toBe(2);
  });

  it("refuses a message over 128 KB, a batch over 100 messages, and a delay over 12 hours, storing nothing", async () => {
    const big = await send({ size: 128 * 1024 + 1, contentType: "text" });
    expect(big.status).toBe(500);
    expect(String(big.body.error)).toBe("a message of 131073 bytes is over the limit of 131072 bytes (128 KB) (413)");
    const many = await stack.call("/queue-probe/batch", json({ count: 101, body: {} }));
    expect(String(many.body.error)).toMatch(/101 messages is over the limit of 100/);
    const late = await send({ body: {}, delaySeconds: 43_201 });
    expect(late.body).toMatchObject({ sent: false, error: expect.stringMatching(/delay|43200|12 hours/i) });
    expect(await stack.sql`select count(*)::int as n from workyard.queue_messages where octet_length(body) > 131072`).toEqual([{ n: 0 }]);
  });
});

const realDatabase = needs({
  suite: "queues: two nodes, one database",
  service: "a real PostgreSQL",
  available: inject("databaseUrl") !== null,
  fix: "PostgreSQL on 127.0.0.1:5432; .ci/run provides it",
});

describe.runIf(realDatabase)("two nodes on one database", () => {
  let projectB: TestProject;
  let b: Supervisor;

  beforeAll(async () => {
    projectB = await createTestProject({ fixtures: ["queue-probe"] });
    const toml = join(projectB.paths.functions, "queue-probe", "wrangler.toml");
    await writeFile(toml, (await readFile(toml, "utf8")).replace(/^REPORT_URL = .*$/m, `REPORT_URL = "${receiverUrl}/report"`));
    const redisUrl = inject("redisUrl");
    b = await startSupervisor({
      paths: projectB.paths,
      host: "127.0.0.1",
      port: 0,
      env: {
        DATABASE_URL: inject("databaseUrl") ?? "",
        AUTH_JWT_SECRET: stack.jwtSecret,
        ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
        WORKYARD_QUEUE_POLL_MS: "200",
        WORKYARD_SCHEDULER: "off",
      },
      log: () => {},
    });
  });

  afterAll(async () => {
    await b?.stop();
    await projectB?.dispose();
  });

  it("delivers every message once across both nodes' dispatchers, those sent on either node", async () => {
    const tag = crypto.randomUUID();
    const sends = [stack.sup.url, b.url].flatMap((base) =>
      Array.from({ length: 10 }, () =>
        fetch(`${base}/queue-probe/batch`, json({ count: 10, body: { tag } })).then(async (r) => (await r.json()) as { sent: boolean }),
      ),
    );
    expect((await Promise.all(sends)).every((r) => r.sent)).toBe(true);
    const mine = () => reportsWhere((r) => (r.value as { tag?: string })?.tag === tag);
    await expect.poll(() => mine().length, { timeout: 20_000 }).toBeGreaterThanOrEqual(200);
    await new Promise((r) => setTimeout(r, 1000)); // a second delivery would show up by now
    const ids = mine().map((r) => r.body.id as string);
    expect(ids).toHaveLength(200);
    expect(new Set(ids).size).toBe(200);
    expect(mine().every((r) => r.body.attempts === 1)).toBe(true);
  });
});
