/**
 * Liveness: a function stuck in a loop stalls its whole workerd process. The supervisor sees that process stop
 * answering /healthz on its probe socket, kills it and starts a fresh one on the same socket, while the other
 * process goes on serving.
 */
import { get } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { livenessInterval, watchLiveness } from "../../lib/node/runtime/liveness.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

/** GET on a connection of its own (so it never queues behind a stuck process's keep-alive connection). */
function freshGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

describe("liveness settings", () => {
  it("reads WORKYARD_LIVENESS_INTERVAL_MS, 0 turning the check off, and refuses anything else", () => {
    expect(livenessInterval(undefined)).toBe(5000);
    expect(livenessInterval("0")).toBe(0);
    expect(livenessInterval("250")).toBe(250);
    expect(() => livenessInterval("soon")).toThrow(/WORKYARD_LIVENESS_INTERVAL_MS must be a whole number/);
  });

  it("kills only after the given number of missed checks, and not after the process exits", async () => {
    const killed: number[] = [];
    let exit!: () => void;
    const exited = new Promise<void>((r) => (exit = r));
    // Nothing listens on port 9 of loopback: every check misses.
    watchLiveness({
      probeUrl: "http://127.0.0.1:9",
      token: "t",
      pid: 4242,
      exited,
      intervalMs: 50,
      failures: 3,
      log: () => {},
      kill: (pid) => killed.push(pid),
    });
    await expect.poll(() => killed, { timeout: 5000 }).toEqual([4242]);
    await new Promise((r) => setTimeout(r, 300));
    expect(killed).toEqual([4242]); // once
    const other: number[] = [];
    watchLiveness({
      probeUrl: "http://127.0.0.1:9",
      token: "t",
      pid: 7,
      exited: Promise.resolve(),
      intervalMs: 50,
      failures: 3,
      log: () => {},
      kill: (pid) => other.push(pid),
    });
    exit();
    await new Promise((r) => setTimeout(r, 400));
    expect(other).toEqual([]); // its process had already exited
  });
});

describe("a function stuck in a loop", () => {
  let project: TestProject;
  let sup: Supervisor;
  const logs: string[] = [];

  beforeAll(async () => {
    project = await createTestProject({ realFunctions: false, fixtures: ["spin"] });
    sup = await startSupervisor({
      paths: project.paths,
      host: "127.0.0.1",
      port: 0,
      env: { WORKERD_PROCESSES: "2", WORKYARD_LIVENESS_INTERVAL_MS: "300", WORKYARD_SCHEDULER: "off" },
      log: (line) => logs.push(line),
    });
  });
  afterAll(async () => {
    await sup?.stop();
    await project?.dispose();
  });

  it("gets its process killed and replaced while the other process keeps serving", async () => {
    const before = sup.pids();
    expect(before).toHaveLength(2);
    const stuck = freshGet(`${sup.url}/spin/spin`, 60_000).then(
      (r) => r,
      (err: unknown) => err,
    );
    // One process is now stalled; new connections are accepted by the other one.
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 5; i++) expect(await freshGet(`${sup.url}/spin`)).toEqual({ status: 200, body: "ok" });
    await expect.poll(() => logs.some((l) => /has not answered \/healthz for 3 checks in a row/.test(l)), { timeout: 20_000 }).toBe(true);
    await expect.poll(() => sup.pids().filter((p) => !before.includes(p)).length, { timeout: 20_000 }).toBe(1);
    expect(sup.pids()).toHaveLength(2);
    expect(await stuck).toBeInstanceOf(Error); // its process was killed under it
    for (let i = 0; i < 10; i++) expect(await freshGet(`${sup.url}/spin`)).toEqual({ status: 200, body: "ok" });
  });
});
