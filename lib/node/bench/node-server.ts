/**
 * A function's Hono app served on Node by @hono/node-server: the bench's baseline. Runs as its own
 * process (`WORKYARD_BENCH_VARS='<vars json>' node node-server.ts <module.ts>`) so that it does not share a
 * thread with the load generator, as workerd does not. Prints `{"port":N}` once it listens on a free
 * loopback port; SIGTERM or SIGINT closes it.
 */
import { pathToFileURL } from "node:url";
import { serve } from "@hono/node-server";

interface FetchApp {
  fetch(request: Request, env: Record<string, unknown>): Response | Promise<Response>;
}

const [modulePath] = process.argv.slice(2);
const varsJson = process.env.WORKYARD_BENCH_VARS ?? "{}";
if (!modulePath) {
  console.error("usage: WORKYARD_BENCH_VARS='<vars as JSON>' node node-server.ts <function module>");
  process.exit(2);
}
const mod = (await import(pathToFileURL(modulePath).href)) as { default?: Partial<FetchApp> };
const app = mod.default;
if (typeof app?.fetch !== "function") {
  console.error(`${modulePath} has no default export with a fetch(request, env) method (a Hono app)`);
  process.exit(2);
}
const fetchApp = app as FetchApp;
// One env object for the whole process, as workerd hands a worker the same env on every request
// (defineEnv validates once per env object).
const env = JSON.parse(varsJson) as Record<string, unknown>;

const server = serve({ fetch: (request) => fetchApp.fetch(request, env), hostname: "127.0.0.1", port: 0 }, (info) => {
  console.log(JSON.stringify({ port: info.port }));
});

const close = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.once("SIGTERM", close);
process.once("SIGINT", close);
