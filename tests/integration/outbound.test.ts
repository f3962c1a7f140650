/**
 * The SDK's outbound helper in real workerd (two processes, as a 2-core node runs), against real local HTTP upstreams
 * the test tells to answer, fail, hang or recover: the breaker opens after the configured failures and then refuses at
 * once (the upstream sees nothing more, in either process: the state is shared through the run's Redis), lets one probe
 * through when half-open, closes when it succeeds; retries never exceed their budget and never repeat a POST unless
 * told; a timeout is a 504; failover reaches the second upstream; the bulkhead caps calls in flight; the fallback
 * answers; /metrics and the dashboard show each upstream. And the example queue consumer (functions/webhooks): while
 * its endpoint is down the breaker keeps deliveries from hammering it (the events wait in the queue), and when it
 * recovers the backlog drains.
 */
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, signUp } from "../helpers/auth.ts";
import { eventually } from "../helpers/eventually.ts";
import { expectError, startStack } from "../helpers/stack.ts";
import type { Stack } from "../helpers/stack.ts";

type Mode = "ok" | "fail" | "hang" | "slow";

/** A real HTTP upstream: records each request, answers as `mode` says. */
interface Upstream {
  url: string;
  mode: Mode;
  seen: { method: string; path: string; body?: string; status?: number }[];
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

async function upstream(): Promise<Upstream> {
  const hanging = new Set<ServerResponse>();
  const u: Upstream = { url: "", mode: "ok", seen: [], inFlight: 0, maxInFlight: 0, close: async () => {} };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const seen: Upstream["seen"][number] = { method: req.method ?? "", path: req.url ?? "" };
    u.seen.push(seen);
    u.inFlight++;
    u.maxInFlight = Math.max(u.maxInFlight, u.inFlight);
    res.on("close", () => u.inFlight--);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    // Kept only where a test reads it (the webhooks' endpoint), so the others compare as { method, path }.
    if (req.url === "/hook") req.on("end", () => (seen.body = Buffer.concat(chunks).toString("utf8")));
    const answer = (status: number) => {
      if (req.url === "/hook") seen.status = status;
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ n: u.seen.length }));
    };
    if (u.mode === "ok") answer(200);
    else if (u.mode === "fail") answer(503);
    else if (u.mode === "slow") setTimeout(() => answer(200), 400);
    else hanging.add(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  u.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  u.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return u;
}

let stack: Stack;
let flaky: Upstream;
let primary: Upstream;
let backup: Upstream;
let narrow: Upstream;
let budget: Upstream;
let hooks: Upstream;

/** A new connection per call, so the two workerd processes both take calls. */
const call = (path: string, init: RequestInit = {}) =>
  stack.call(`/outbound-probe${path}`, { ...init, headers: { connection: "close", ...init.headers } });

const internal = async (path: string) =>
  fetch(`${stack.sup.internalUrl}${path}`, { headers: { authorization: `Bearer ${stack.sup.internalToken}` } });

beforeAll(async () => {
  [flaky, primary, backup, narrow, budget, hooks] = await Promise.all([
    upstream(),
    upstream(),
    upstream(),
    upstream(),
    upstream(),
    upstream(),
  ]);
  // The Redis bindings: the breakers' state is shared through them.
  const toml = `
[secrets]
required = ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"]

[workyard.upstreams.flaky]
url = "${flaky.url}"
timeout_ms = 1500
retries = 2
retry_delay_ms = 5
retry_max_delay_ms = 20
failures = 5
half_open_after_ms = 1500
sync_ms = 100

[workyard.upstreams.budget]
url = "${budget.url}"
timeout_ms = 300
retries = 3
retry_delay_ms = 5
retry_max_delay_ms = 20
breaker = "off"

[workyard.upstreams.primary]
url = "${primary.url}"
retries = 0
failures = 2
half_open_after_ms = 60000
sync_ms = 100
failover = "backup"

[workyard.upstreams.backup]
url = "${backup.url}"

[workyard.upstreams.narrow]
url = "${narrow.url}"
max_in_flight = 2
breaker = "off"

[workyard.upstreams.coded]
url = "${budget.url}"
retries = 2
breaker = "off"
`;
  // The example consumer, with short waits: its first retry after 1 s, the breaker open for 1 s, then 2 s, at most 2 s.
  const webhooks = `
[secrets]
required = ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"]

[vars]
WEBHOOK_URL = "${hooks.url}/hook"
WEBHOOK_RETRY_BASE_SECONDS = 1

[[queues.consumers]]
queue = "link-events"
max_batch_size = 10
max_batch_timeout = 1
max_retries = 20
dead_letter_queue = "link-events-dead"

[workyard.upstreams.webhook]
failures = 3
half_open_after_ms = 1000
max_half_open_after_ms = 2000
sync_ms = 100
`;
  stack = await startStack({
    fixtures: ["outbound-probe"],
    env: { WORKERD_PROCESSES: "2", WORKYARD_SCHEDULER: "off", WORKYARD_QUEUE_POLL_MS: "200" },
    files: { "functions/outbound-probe/wrangler.toml": toml, "functions/webhooks/wrangler.toml": webhooks },
  });
}, 120_000);

afterAll(async () => {
  if (process.env.OUTBOUND_DEBUG) console.log(stack?.logs.join("\n"));
  await stack?.stop();
  await Promise.all([flaky, primary, backup, narrow, budget, hooks].map((u) => u?.close()));
});

describe("outbound calls", () => {
  it("passes an answer through, and a GET that fails is tried 1 + retries times, never more", async () => {
    const ok = await call("/get/budget");
    expect(ok.status).toBe(200);
    expect(budget.seen).toEqual([{ method: "GET", path: "/thing" }]);

    budget.mode = "fail";
    budget.seen = [];
    const failed = await call("/get/budget");
    // The upstream's own 503 comes back after the last try.
    expect(failed.status).toBe(503);
    expect(failed.res.headers.get("x-upstream-status")).toBe("503");
    expect(budget.seen).toHaveLength(4);
    budget.mode = "ok";
  });

  it("never repeats a POST unless the call says it is idempotent", async () => {
    budget.mode = "fail";
    budget.seen = [];
    expect((await call("/post/budget", { method: "POST" })).status).toBe(503);
    expect(budget.seen).toEqual([{ method: "POST", path: "/thing" }]);

    budget.seen = [];
    expect((await call("/post/budget?idempotent=1", { method: "POST" })).status).toBe(503);
    expect(budget.seen).toHaveLength(4);

    // A call that does not use upstream.fetch is not known to be idempotent: one try, unless told.
    budget.seen = [];
    expect((await call("/plain/budget")).status).toBe(503);
    expect(budget.seen).toHaveLength(1);
    budget.seen = [];
    expect((await call("/plain/budget?idempotent=1")).status).toBe(503);
    expect(budget.seen).toHaveLength(4);
    budget.mode = "ok";
  });

  it("a try that does not answer within timeout_ms is a 504 after its retries", async () => {
    budget.mode = "hang";
    budget.seen = [];
    const started = Date.now();
    const r = await call("/get/budget");
    expectError(r, 504, "upstream_timeout");
    expect(budget.seen).toHaveLength(4);
    // 4 tries of 300 ms and three short waits; far from the gateway's deadline.
    expect(Date.now() - started).toBeLessThan(5000);
    budget.mode = "ok";
  });

  it("settings declared in code apply, under the wrangler.toml's", async () => {
    budget.mode = "fail";
    budget.seen = [];
    // coded: retries = 1 and timeout_ms = 250 from defineUpstreams; url and retries = 2 from wrangler.toml, whose
    // retries win.
    expect((await call("/get/coded")).status).toBe(503);
    expect(budget.seen).toHaveLength(3);
    budget.mode = "hang";
    budget.seen = [];
    const started = Date.now();
    expectError(await call("/get/coded"), 504, "upstream_timeout");
    // Three tries of 250 ms (the code's timeout; the default is 10 s).
    expect(Date.now() - started).toBeLessThan(3000);
    budget.mode = "ok";
  });

  it("the breaker opens after the configured failures, then refuses at once in every process", async () => {
    flaky.mode = "fail";
    // 3 tries per call: the 5th failure opens the breaker during the second call, whose last retry is refused.
    expect((await call("/get/flaky")).status).toBe(503);
    const second = await call("/get/flaky");
    expectError(second, 503, "upstream_unavailable");
    expect(Number(second.res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(flaky.seen).toHaveLength(5);

    // 30 calls on new connections (both workerd processes take some), once the other process's copy of the shared
    // state has had time to be read again (sync_ms): all refused, none reaches the upstream.
    await new Promise((r) => setTimeout(r, 150));
    const answers = await Promise.all(Array.from({ length: 30 }, () => call("/get/flaky")));
    for (const a of answers) expectError(a, 503, "upstream_unavailable");
    expect(flaky.seen).toHaveLength(5);
    expect(stack.logs.some((l) => /upstream "flaky": breaker open \(5 failures in a row/.test(l))).toBe(true);

    // The fallback answers instead while it is open.
    const fallback = await call("/fallback/flaky");
    expect(fallback.status).toBe(200);
    expect(fallback.body).toEqual({ fallback: true, kind: "open", upstream: "flaky" });
  });

  it("when half-open, one probe goes through; a failed one opens it again; a good one closes it", async () => {
    // Still failing: after the open wait, of 20 calls at once exactly one reaches the upstream.
    await new Promise((r) => setTimeout(r, 1600));
    flaky.mode = "hang";
    const burst = await Promise.all(Array.from({ length: 20 }, () => call("/get/flaky")));
    expect(flaky.seen).toHaveLength(6);
    // The probe timed out and opened the breaker again, so its own retry was refused too.
    for (const a of burst) expectError(a, 503, "upstream_unavailable");
    // Opened again, for twice as long (3 s): calls are refused.
    expectError(await call("/get/flaky"), 503, "upstream_unavailable");
    expect(flaky.seen).toHaveLength(6);

    flaky.mode = "ok";
    await new Promise((r) => setTimeout(r, 3100));
    expect((await call("/get/flaky")).status).toBe(200);
    expect(flaky.seen).toHaveLength(7);
    const after = await Promise.all(Array.from({ length: 10 }, () => call("/get/flaky")));
    expect(after.every((a) => a.status === 200)).toBe(true);
    expect(flaky.seen).toHaveLength(17);
    // Each change is a log line (a warning when it opens, in the supervisor's log too).
    const { url, token } = stack.sup.collector;
    const lines = () =>
      fetch(`${url}/logs?function=outbound-probe&tail=2000`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.text());
    await eventually(async () => /breaker closed/.test(await lines()));
    expect(await lines()).toMatch(/upstream \\"flaky\\": breaker half-open/);
    expect(await lines()).toMatch(/upstream \\"flaky\\": breaker closed \(the probe succeeded\)/);
  }, 20_000);

  it("fails over to the second upstream, also for a POST once the first one's breaker is open", async () => {
    primary.mode = "fail";
    const first = await call("/get/primary");
    expect(first.status).toBe(200);
    expect(primary.seen).toHaveLength(1);
    expect(backup.seen).toHaveLength(1);

    // A POST the primary may have received is not sent again elsewhere: its 503 comes back (and opens its breaker).
    const post = await call("/post/primary", { method: "POST" });
    expect(post.status).toBe(503);
    expect(primary.seen).toHaveLength(2);
    expect(backup.seen).toHaveLength(1);

    // With the primary's breaker open (seen by both processes within sync_ms), nothing is sent to it: the POST goes
    // to the backup.
    await new Promise((r) => setTimeout(r, 150));
    const refused = await call("/post/primary", { method: "POST" });
    expect(refused.status).toBe(200);
    expect(primary.seen).toHaveLength(2);
    expect(backup.seen.at(-1)).toEqual({ method: "POST", path: "/thing" });
  });

  it("the bulkhead keeps at most max_in_flight calls per isolate; one more is refused at once", async () => {
    narrow.mode = "slow";
    const answers = await Promise.all(Array.from({ length: 12 }, () => call("/get/narrow")));
    const busy = answers.filter((a) => a.status === 503);
    for (const a of busy) expectError(a, 503, "upstream_busy");
    expect(busy.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(2);
    // Two per isolate, two workerd processes.
    expect(narrow.maxInFlight).toBeLessThanOrEqual(4);
  });

  it("the queue consumer's breaker spares a failing endpoint, and the backlog drains when it recovers", async () => {
    hooks.mode = "fail";
    const user = await signUp(stack.sup.url);
    const N = 12;
    // Other test files share the run's database (and leave link events of their own): this test counts its own, by tag.
    const tag = `outbound-${crypto.randomUUID()}`;
    const mine = (queue: string) =>
      stack.sql`select count(*)::int as n from workyard.queue_messages where queue = ${queue} and convert_from(body, 'UTF8') like ${`%${tag}%`}`.then(
        (rows) => rows[0]?.n,
      );
    for (let i = 0; i < N; i++) {
      const r = await stack.call("/links", {
        method: "POST",
        headers: { "content-type": "application/json", ...bearer(user.accessToken) },
        body: JSON.stringify({ url: `https://example.com/${tag}/${i}` }),
      });
      expect(r.status).toBe(201);
    }
    // The first deliveries fail and open the breaker (3 in a row); then only a probe now and then reaches the endpoint.
    const reached = () => hooks.seen.filter((h) => h.body?.includes(tag)).length;
    await expect.poll(reached, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 2000));
    const during = reached();
    await new Promise((r) => setTimeout(r, 4000));
    // Without the breaker, 12 events retried every 1-4 s would reach it 20 times or more in 4 s; with it, the probes
    // (one per 2 s open wait) and what was in flight when it opened.
    expect(reached() - during).toBeLessThanOrEqual(4);
    expect(during).toBeLessThanOrEqual(N + 4);

    // They wait in the queue.
    expect(await mine("link-events")).toBe(N);
    hooks.mode = "ok";
    await expect.poll(() => mine("link-events"), { timeout: 20_000 }).toBe(0);
    // Every event delivered (answered 2xx) at least once, none dead-lettered.
    const delivered = new Set(
      hooks.seen.filter((h) => h.body?.includes(tag) && h.status === 200).map((h) => JSON.parse(h.body ?? "{}").url),
    );
    expect(delivered.size).toBe(N);
    expect(await mine("link-events-dead")).toBe(0);
  }, 40_000);

  it("/metrics and the dashboard show each upstream", async () => {
    const text = async () => (await internal("/metrics")).text();
    await eventually(async () => /^workyard_outbound_breaker_changes_total\{upstream="flaky",to="closed"\} 1$/m.test(await text()));
    const metrics = await text();
    expect(metrics).toMatch(/^workyard_outbound_breaker_changes_total\{upstream="flaky",to="closed"\} 1$/m);
    expect(metrics).toMatch(/^workyard_outbound_breaker_state\{upstream="flaky",state="closed"\} 1$/m);
    expect(metrics).toMatch(/^workyard_outbound_breaker_state\{upstream="primary",state="open"\} 1$/m);
    expect(metrics).toMatch(/^workyard_outbound_breaker_changes_total\{upstream="flaky",to="open"\} 2$/m);
    expect(metrics).toMatch(/^workyard_outbound_tries_total\{function="outbound-probe",upstream="flaky",outcome="refused"\} \d+$/m);
    expect(metrics).toMatch(/^workyard_outbound_tries_total\{function="outbound-probe",upstream="budget",outcome="timeout"\} 4$/m);
    expect(metrics).toMatch(/^workyard_outbound_tries_total\{function="outbound-probe",upstream="narrow",outcome="busy"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^workyard_outbound_retries_total\{function="outbound-probe",upstream="budget"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^workyard_outbound_breaker_state_seconds\{upstream="primary"\} \d/m);

    const board = (await (await internal("/dashboard/data")).json()) as { upstreams: { upstream: string; state: string; scope: string }[] };
    expect(board.upstreams.map((u) => u.upstream)).toEqual(["backup", "budget", "coded", "flaky", "narrow", "primary", "webhook"]);
    expect(board.upstreams.find((u) => u.upstream === "webhook")).toMatchObject({ functions: ["webhooks"], state: "closed" });
    expect(board.upstreams.find((u) => u.upstream === "primary")).toMatchObject({ state: "open", scope: "shared" });
  });
});
