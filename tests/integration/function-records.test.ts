/**
 * How a function's own worker records its invocations (lib/workers/trace/), with no tail worker: real workerd, the
 * supervisor's collector, the request log and /errors. What it logs after its answer, bounded; what it logged before
 * the gateway's deadline cancelled it; a promise handed to waitUntil that rejects; a class default export; a cron of a
 * function in the gateway's isolate; and records forged by function code that reaches the trace sink binding.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConsoleLine, LogLine, RequestLine } from "../../lib/node/observe/records.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { internalSocket } from "../helpers/internal-socket.ts";
import { startStack } from "../helpers/stack.ts";
import type { Stack } from "../helpers/stack.ts";

let stack: Stack;
let sup: Supervisor;
let project: Stack["project"];

beforeAll(async () => {
  stack = await startStack({ fixtures: ["boom", "oops", "tick-inline", "trace-probe", "trace-slow", "trace-class"] });
  ({ sup, project } = stack);
});

afterAll(() => stack?.stop());

const { internal, metric } = internalSocket(() => sup);

describe("a function's own records (no tail worker)", () => {
  /** The request log's lines, as written so far. */
  async function logLines(): Promise<LogLine[]> {
    const text = await readFile(join(project.paths.logs, "requests.log"), "utf8");
    return text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as LogLine);
  }

  it("keeps the trace sink out of the function's env", async () => {
    expect(await (await fetch(`${sup.url}/trace-probe/env`)).json()).toEqual({ sink: false });
  });

  // In its own isolate, and in the gateway's (there 300 ms after the answer: the request's own record went out with
  // its batch before that).
  it.each([
    ["trace-probe", "a function", "late-line-0001"],
    ["tick-inline", "a function in the gateway's isolate", "late-inline-0001"],
  ])("records what %s (%s) logs after its answer, as its own, with the request's id", async (fn, _where, id) => {
    const res = await fetch(`${sup.url}/${fn}/late`, { headers: { "x-request-id": id } });
    expect(res.status).toBe(200);
    const said = async () => (await logLines()).filter((l): l is ConsoleLine => l.type === "log" && l.requestId === id);
    await expect.poll(async () => (await said()).map((l) => l.message), { timeout: 10_000 }).toEqual(["answering now", "after the answer"]);
    expect((await said()).map((l) => [l.function, l.level])).toEqual([
      [fn, "info"],
      [fn, "warn"],
    ]);
  });

  it("logs each request that logged nothing with its own time, in the records the gateway shares among them", async () => {
    const ids = Array.from({ length: 5 }, (_, i) => `quiet-request-000${i}`);
    const before = Date.now();
    // A function in its own isolate: the gateway runs no context of its own for such a request.
    for (const id of ids) {
      const res = await fetch(`${sup.url}/trace-probe/env`, { headers: { "x-request-id": id } });
      expect(res.status).toBe(200);
      await sleep(30);
    }
    const logged = async () => (await logLines()).filter((l): l is RequestLine => l.type === "request" && ids.includes(l.requestId));
    await expect.poll(async () => (await logged()).length, { timeout: 10_000 }).toBe(5);
    const lines = await logged();
    expect(lines.map((l) => l.requestId)).toEqual(ids);
    const times = lines.map((l) => Date.parse(l.time));
    // Each its own time (30 ms apart), not the shared record's.
    expect(new Set(times).size).toBe(5);
    expect(times[0]).toBeGreaterThanOrEqual(before - 1000);
    expect(times.every((t, i) => i === 0 || t >= (times[i - 1] ?? 0))).toBe(true);
  });

  it("sends requests that logged nothing in fewer records than requests", async () => {
    const records = async () => (await metric("workyard_trace_records_total")) ?? 0;
    const ids = Array.from({ length: 10 }, (_, i) => `shared-record-${String(i).padStart(4, "0")}`);
    const before = await records();
    // A function in the gateway's isolate, so the gateway's are the only records these requests make.
    const answers = await Promise.all(ids.map((id) => fetch(`${sup.url}/tick-inline/`, { headers: { "x-request-id": id } })));
    expect(answers.map((r) => r.status)).toEqual(ids.map(() => 200));
    const logged = async () => (await logLines()).filter((l): l is RequestLine => l.type === "request" && ids.includes(l.requestId));
    await expect.poll(async () => (await logged()).length, { timeout: 10_000 }).toBe(10);
    // A record each would be 10; they arrive within a batch or two.
    expect((await records()) - before).toBeLessThanOrEqual(5);
  });

  it("records the gateway's own line about a request to a function in its own isolate with that request", async () => {
    // Such a request runs no function code in the gateway's isolate, and no context of its own there: the gateway
    // hands its line to the request's record itself.
    const res = await fetch(`${sup.url}/boom`, { headers: { "x-request-id": "gateway-line-0001" } });
    expect(res.status).toBe(500);
    const said = async () =>
      (await logLines()).filter(
        (l): l is ConsoleLine => l.type === "log" && l.requestId === "gateway-line-0001" && l.message.startsWith('function "boom" threw'),
      );
    await expect.poll(async () => (await said()).map((l) => [l.function, l.level]), { timeout: 10_000 }).toEqual([["boom", "error"]]);
    expect((await said())[0]?.message).toContain("[gateway-line-0001]");
  });

  it("keeps a bounded number of the lines logged after the answer, and says so", async () => {
    const res = await fetch(`${sup.url}/trace-probe/flood`, { headers: { "x-request-id": "flood-line-0001" } });
    expect(res.status).toBe(200);
    const said = async () => (await logLines()).filter((l): l is ConsoleLine => l.type === "log" && l.requestId === "flood-line-0001");
    await expect.poll(async () => (await said()).at(-1)?.message, { timeout: 10_000 }).toMatch(/the rest are not kept/);
    const lines = await said();
    expect(lines).toHaveLength(101);
    expect(lines[0]?.message).toBe("flood flood-line-0001 0");
    expect(lines[99]?.message).toBe("flood flood-line-0001 99");
  });

  it("records what a function cancelled at the gateway's deadline logged, at its isolate's next invocation", async () => {
    const res = await fetch(`${sup.url}/trace-slow/slow`, { headers: { "x-request-id": "slow-cancelled-0001" } });
    expect(res.status).toBe(504);
    await sleep(1600); // its deadline (500 ms) and the grace (1 s)
    expect((await fetch(`${sup.url}/trace-slow/`)).status).toBe(200);
    const said = async () =>
      (await logLines()).find((l) => l.type === "log" && l.requestId === "slow-cancelled-0001" && l.message.startsWith("slow start"));
    await expect.poll(said, { timeout: 10_000 }).toMatchObject({ function: "trace-slow", message: "slow start slow-cancelled-0001" });
  });

  it("records a promise handed to waitUntil that rejects as the function's exception", async () => {
    expect((await fetch(`${sup.url}/trace-probe/reject`, { headers: { "x-request-id": "rejected-0001" } })).status).toBe(200);
    type Group = { function: string; kind: string; message: string; latest: { requestId: string | null } };
    const group = async () =>
      ((await (await internal("/errors")).json()) as { errors: Group[] }).errors.find((g) => g.message === "rejected in waitUntil");
    await expect
      .poll(group, { timeout: 10_000 })
      .toMatchObject({ function: "trace-probe", kind: "exception", latest: { requestId: "rejected-0001" } });
  });

  it("serves and records a function whose default export is a class (a WorkerEntrypoint)", async () => {
    const res = await fetch(`${sup.url}/trace-class/`, { headers: { "x-request-id": "class-0001" } });
    expect(await res.text()).toBe("from a class");
    const said = async () => (await logLines()).find((l) => l.type === "log" && l.requestId === "class-0001");
    await expect.poll(said, { timeout: 10_000 }).toMatchObject({ function: "trace-class", message: "from a class class-0001" });
  });

  it("records a cron run of a function in the gateway's isolate, which its own worker runs", async () => {
    const res = await internal(`/scheduled/tick-inline?cron=${encodeURIComponent("*/5 * * * *")}`, { method: "POST" });
    expect(await res.json()).toMatchObject({ outcome: "ok" });
    await expect
      .poll(() => metric('workyard_scheduled_invocations_total{function="tick-inline",outcome="ok"}'), { timeout: 10_000 })
      .toBeGreaterThanOrEqual(1);
    const ran = (await logLines()).find((l) => l.type === "log" && l.message.startsWith("tick-inline: ran"));
    expect(ran).toMatchObject({ function: "tick-inline", cron: "*/5 * * * *", level: "info" });
  });

  it("takes a forged record from function code only as that function's, without its access records", async () => {
    // A victim: another function's request that fails, with its own logged error.
    expect((await fetch(`${sup.url}/oops/fail/victim`, { headers: { "x-request-id": "victim-request-0001" } })).status).toBe(500);
    const forge = await fetch(`${sup.url}/trace-probe/forge?victim=victim-request-0001`);
    expect(await forge.json()).toEqual({ reached: true });
    // Taken record by record: the malformed one is dropped, the rest are kept, each as trace-probe's.
    const forged = async () => (await logLines()).find((l) => l.type === "log" && l.message === "forged line");
    await expect.poll(forged, { timeout: 10_000 }).toBeDefined();
    expect((await forged())?.function).toBe("trace-probe");
    expect((await logLines()).some((l) => l.type === "request" && l.requestId === "forged-access-0001")).toBe(false);
    // An outcome workerd never gives makes no series of its own.
    await expect
      .poll(() => metric('workyard_scheduled_invocations_total{function="trace-probe",outcome="unknown"}'), { timeout: 10_000 })
      .toBe(1);
    expect((await (await internal("/metrics")).text()).includes("forged-outcome")).toBe(false);
    // The planted exception is trace-probe's own error; the victim's request keeps its own error.
    type Group = { function: string; message: string; latest: { requestId: string | null } };
    const groups = async () => ((await (await internal("/errors")).json()) as { errors: Group[] }).errors;
    await expect.poll(async () => (await groups()).some((g) => g.message === "planted by trace-probe"), { timeout: 10_000 }).toBe(true);
    const all = await groups();
    expect(all.find((g) => g.message === "planted by trace-probe")?.function).toBe("trace-probe");
    expect(all.find((g) => g.message === "oops: could not handle victim")?.latest.requestId).toBe("victim-request-0001");
    expect(await metric('workyard_requests_total{function="oops",method="FORGED",status_class="2xx"}')).toBeUndefined();
  });
});
