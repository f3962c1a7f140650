/**
 * Queues in `npm run dev`: miniflare's own in-memory queues behind the same bindings, with the consumer settings
 * from the function's wrangler.toml (not miniflare's defaults), reached through the dev loader: a function's send()
 * (its Queue handed to the bundle through a relay entrypoint) and the consumer's queue() with its outcome.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { startDevServer } from "../../lib/node/dev/server.ts";
import type { DevServer } from "../../lib/node/dev/server.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

const databaseUrl = inject("databaseUrl");
const redisUrl = inject("redisUrl");
const reports: Record<string, unknown>[] = [];
let receiver: Server;
let project: TestProject;
let dev: DevServer;
let dataDir: string;
const logs: string[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      reports.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  project = await createTestProject({ fixtures: ["queue-probe"], realFunctions: false });
  // Settings miniflare's defaults (batch 5, retries 2) would not give: the function's own must apply.
  const toml = join(project.paths.functions, "queue-probe", "wrangler.toml");
  await writeFile(
    toml,
    (await readFile(toml, "utf8")).replace("max_batch_size = 5", "max_batch_size = 3").replace("max_retries = 2", "max_retries = 1"),
  );
  await writeFile(
    join(project.paths.root, ".dev.vars"),
    `REPORT_URL=http://127.0.0.1:${(receiver.address() as AddressInfo).port}/report\n`,
  );
  if (databaseUrl) await migrateUp(databaseUrl, project.paths.migrations);
  dataDir = await mkdtemp(join(tmpdir(), "workyard-dev-queues-"));
  dev = await startDevServer({
    paths: project.paths,
    host: "127.0.0.1",
    port: 0,
    env: { ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}), ...(redisUrl ? { REDIS_URL: redisUrl } : {}) },
    embeddedDbDir: dataDir,
    log: (line) => logs.push(line),
  });
});

afterAll(async () => {
  await dev?.stop();
  await project?.dispose();
  await new Promise((resolve) => receiver?.close(resolve));
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const post = (path: string, body: unknown) =>
  fetch(`${dev.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const tagged = (tag: string) => reports.filter((r) => (r.value as { tag?: string } | undefined)?.tag === tag);

it("sends from a function and delivers to its consumer in batches of its max_batch_size", async () => {
  const tag = crypto.randomUUID();
  expect(await (await post("/queue-probe/batch", { count: 7, body: { tag } })).json()).toEqual({ sent: true });
  await expect.poll(() => tagged(tag).length, { timeout: 15_000 }).toBe(7);
  expect(Math.max(...tagged(tag).map((r) => Number(r.size)))).toBe(3);
  expect(tagged(tag)[0]).toMatchObject({ queue: "probe", type: "object", attempts: 1 });
});

it("retries a message the handler throws on, max_retries times, as the function's settings say", async () => {
  const tag = crypto.randomUUID();
  await post("/queue-probe/send", { body: { tag, outcome: "throw" } });
  await expect.poll(() => tagged(tag).length, { timeout: 15_000 }).toBe(2);
  await new Promise((r) => setTimeout(r, 1500));
  expect(tagged(tag).map((r) => r.attempts)).toEqual([1, 2]);
});
