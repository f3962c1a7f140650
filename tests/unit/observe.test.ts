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
import { BUCKET_MS, Series } from "../../lib/node/observe/series.ts";
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
  it("sum requests, 5xx and latency per function over the last minute and per bucket", () => {
    const s = new Series();
    const now = 1_800_000_000_000;
    s.add("a", now - 5_000, 200, 10);
    s.add("a", now - 5_000, 500, 30);
    s.add("a", now - 120_000, 200, 1); // outside the last minute
    const [a] = s.summary(["a", "b"], now);
    expect(a).toMatchObject({ name: "a", errorRate: 0.5, avgMs: 20, maxMs: 30, total: 3 });
    expect(a?.requestsPerSecond).toBeCloseTo(2 / 60);
    expect(s.summary(["a", "b"], now)[1]).toMatchObject({ name: "b", total: 0, requestsPerSecond: 0 });
    const series = s.series(now);
    const i = series.t.indexOf(Math.floor((now - 5_000) / BUCKET_MS) * (BUCKET_MS / 1000));
    expect(series.functions.a?.rps[i]).toBe(2 / (BUCKET_MS / 1000));
    expect(series.functions.a?.errorRate[i]).toBe(50);
    expect(series.functions.a?.avgMs[i - 1]).toBeNull(); // no requests: no latency, not zero
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
