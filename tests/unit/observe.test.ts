/**
 * The collector's pure parts: error fingerprints, source-mapping a minified stack with a real esbuild
 * source map, the dashboard's time series, and how `npm run logs` prints a line.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manifest } from "../../lib/node/releases/manifest.ts";
import { fingerprintOf, normalizeMessage } from "../../lib/node/observe/error-store.ts";
import { formatLine } from "../../lib/node/observe/log-format.ts";
import { messageText } from "../../lib/node/observe/records.ts";
import { BUCKET_MS, Series, windowSchema } from "../../lib/node/observe/series.ts";
import { SourceMapper } from "../../lib/node/observe/source-maps.ts";

describe("error fingerprints", () => {
  it("ignore what varies between occurrences, and keep apart what differs", () => {
    expect(normalizeMessage("no link 42 for 0d9c4b1e-5a6f-4c1d-9e2b-7f3a8c6d5e4f at ff00aa11bb22cc33")).toBe(
      "no link <n> for <uuid> at <hex>",
    );
    const base = { function: "links", kind: "logged" as const, name: "Error" };
    const a = fingerprintOf({ ...base, message: "timeout after 31 ms" }, "functions/links/index.ts:10:5");
    expect(fingerprintOf({ ...base, message: "timeout after 5000 ms" }, "functions/links/index.ts:12:9")).toBe(a); // lines move with edits
    expect(fingerprintOf({ ...base, message: "timeout after 31 ms" }, "lib/sdk/db.ts:10:5")).not.toBe(a);
    expect(fingerprintOf({ ...base, function: "other", message: "timeout after 31 ms" }, "functions/links/index.ts:10:5")).not.toBe(a);
  });
});

describe("source maps", () => {
  let root: string;
  let mapper: SourceMapper;
  let column: number;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "workyard-maps-"));
    await mkdir(join(root, "functions/demo"), { recursive: true });
    await writeFile(
      join(root, "functions/demo/index.ts"),
      ["export default {", "  fetch(): Response {", '    throw new Error("demo failed");', "  },", "};", ""].join("\n"),
    );
    const release = join(root, ".workyard/releases/abc");
    await build({
      entryPoints: [join(root, "functions/demo/index.ts")],
      bundle: true,
      minify: true,
      sourcemap: true,
      format: "esm",
      outfile: join(release, "functions/demo/index.js"),
    });
    const code = await readFile(join(release, "functions/demo/index.js"), "utf8");
    column = code.indexOf("new Error") + 1;
    const manifest = {
      functions: [{ name: "demo", module: "functions/demo/index.js" }],
      gateway: { module: "gateway/gateway.js" },
      internal: { module: "internal/internal.js" },
      tail: { module: "tail/tail.js" },
    };
    mapper = new SourceMapper(release, manifest as unknown as Manifest, root);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it("rewrite a minified frame to the TypeScript file and line", () => {
    const mapped = mapper.mapStack("demo", `Error: demo failed\n    at Object.fetch (index.js:1:${column})`);
    expect(mapped.location).toBe("functions/demo/index.ts:3:11");
    expect(mapped.stack).toBe("Error: demo failed\n    at Object.fetch (functions/demo/index.ts:3:11)");
  });

  it("leave frames alone that no map covers", () => {
    const stack = "Error: x\n    at somewhere (other.js:1:1)\n    at native";
    expect(mapper.mapStack("nope", stack)).toEqual({ stack, location: null });
  });
});

describe("dashboard series", () => {
  const now = 1_800_000_000_000 + 4_000; // 4 s into a 10 s bucket

  it("sum requests, 4xx, 5xx and latency per function over the window, and per step", () => {
    const s = new Series();
    s.add("a", now - 5_000, 200, 10);
    s.add("a", now - 5_000, 500, 30);
    s.add("a", now - 6_000, 404, 20);
    s.add("a", now - 7 * 60_000, 200, 1); // outside the last 5 minutes
    const { window, functions, series } = s.figures(["a", "b"], "5m", now);
    expect(window).toMatchObject({ choice: "5m", to: now, stepMs: BUCKET_MS });
    expect(window.from).toBeLessThanOrEqual(now - 5 * 60_000);
    expect(window.from).toBeGreaterThan(now - 5 * 60_000 - BUCKET_MS);
    const [a, b] = functions;
    expect(a).toMatchObject({ name: "a", requests: 3, clientErrors: 1, serverErrors: 1, maxMs: 30 });
    expect(a?.errorRate).toBeCloseTo(1 / 3);
    expect(a?.requestsPerSecond).toBeCloseTo(3 / ((now - window.from) / 1000));
    expect(b).toMatchObject({ name: "b", requests: 0, requestsPerSecond: 0, p50Ms: null, maxMs: null });
    const i = series.t.indexOf(Math.floor((now - 5_000) / BUCKET_MS) * (BUCKET_MS / 1000));
    expect(series.functions.a?.rps[i]).toBe(3 / (BUCKET_MS / 1000));
    expect(series.functions.a?.errorRate[i]).toBeCloseTo(100 / 3);
    expect(series.functions.a?.p95Ms[i - 1]).toBeNull(); // no requests: no latency, not zero
    expect(series.functions.b).toBeUndefined(); // nothing to draw
    // The step still filling: its rate over the 4 s elapsed, not the 10 s it will have.
    s.add("a", now - 1_000, 200, 5);
    expect(s.figures(["a"], "5m", now).series.functions.a?.rps.at(-1)).toBe(1 / 4);
  });

  it("count only the window chosen, with steps that keep a plot within 120 points", () => {
    const s = new Series();
    for (const minutesAgo of [50, 12, 3, 0.5]) s.add("a", now - minutesAgo * 60_000, 200, 10);
    const requests = (choice: "5m" | "15m" | "60m") => s.figures(["a"], choice, now).functions[0]?.requests;
    expect([requests("5m"), requests("15m"), requests("60m")]).toEqual([2, 3, 4]);
    const hour = s.figures(["a"], "60m", now);
    expect(hour.window.stepMs).toBe(30_000);
    expect(hour.series.t.length).toBeLessThanOrEqual(121);
    expect(hour.series.functions.a?.rps.length).toBe(hour.series.t.length);
  });

  it("fit the automatic window to the data: from the first request, at least two minutes, at most an hour", () => {
    const s = new Series();
    expect(s.figures([], "auto", now).window.firstRequest).toBeNull();
    s.add("a", now - 20_000, 200, 10);
    const short = s.figures(["a"], "auto", now).window;
    expect(now - short.from).toBeGreaterThanOrEqual(2 * 60_000);
    expect(now - short.from).toBeLessThan(2 * 60_000 + BUCKET_MS);
    s.add("a", now - 8 * 60_000 - 3_000, 200, 10);
    const eight = s.figures(["a"], "auto", now);
    expect(eight.window.firstRequest).toBe(Math.floor((now - 8 * 60_000 - 3_000) / BUCKET_MS) * BUCKET_MS);
    expect(eight.window.from).toBeLessThanOrEqual(eight.window.firstRequest ?? 0);
    expect((eight.window.firstRequest ?? 0) - eight.window.from).toBeLessThan(eight.window.stepMs); // no empty margin before it
    expect(eight.functions[0]?.requests).toBe(2); // the first request is in the window, not cut off
    s.add("a", now - 3 * 60 * 60_000, 200, 10); // older than what is kept
    expect(now - s.figures(["a"], "auto", now).window.from).toBeLessThanOrEqual(60 * 60_000 + 30_000);
  });

  it("read latency percentiles from the histogram within 19 %, exact for one request", () => {
    const s = new Series();
    for (let ms = 1; ms <= 1000; ms++) s.add("a", now - 1_000, 200, ms);
    s.add("b", now - 1_000, 200, 42.5);
    const [a, b] = s.figures(["a", "b"], "5m", now).functions;
    for (const [got, want] of [
      [a?.p50Ms, 500],
      [a?.p95Ms, 950],
      [a?.p99Ms, 990],
    ] as const) {
      expect(got).toBeGreaterThan(want / 1.19);
      expect(got).toBeLessThan(want * 1.19);
    }
    expect(a?.maxMs).toBe(1000);
    expect(b).toMatchObject({ p50Ms: 42.5, p95Ms: 42.5, p99Ms: 42.5, maxMs: 42.5 });
  });

  it("refuse a window it does not offer, saying which it does", () => {
    const parsed = windowSchema.safeParse("2h");
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toContain("5m, 15m or 60m");
  });
});

describe("log lines", () => {
  it("print for people", () => {
    expect(
      formatLine({
        time: "2026-01-02T10:47:17.914Z",
        type: "request",
        level: "warn",
        requestId: "r1",
        function: "links",
        method: "GET",
        path: "/x",
        status: 404,
        durationMs: 9,
        clientIp: "127.0.0.1",
      }),
    ).toBe("10:47:17.914 WARN  links        404 GET /x 9 ms  127.0.0.1  [r1]");
    expect(
      formatLine({
        time: "2026-01-02T10:47:18.000Z",
        type: "log",
        level: "info",
        requestId: null,
        function: "links",
        cron: "*/5 * * * *",
        message: "rolled up",
      }),
    ).toBe("10:47:18.000 INFO  links        rolled up  [cron */5 * * * *]");
    expect(messageText(["failed:", { name: "TypeError", message: "x is undefined", stack: "..." }, { n: 1 }])).toBe(
      'failed: TypeError: x is undefined {"n":1}',
    );
  });
});
