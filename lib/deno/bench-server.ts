/**
 * A function's app served by Deno.serve for `npm run bench`, the Deno counterpart of lib/node/bench/node-server.ts:
 * `WORKYARD_BENCH_VARS='<vars json>' deno run ... bench-server.ts <module.ts>`. Prints `{"port":N}` once it listens on
 * a free loopback port; SIGTERM or SIGINT stops it. The same env object on every request, as workerd hands a worker.
 */
interface FetchApp {
  fetch(request: Request, env: Record<string, unknown>): Response | Promise<Response>;
}

const modulePath = Deno.args[0];
if (!modulePath) {
  console.error("usage: WORKYARD_BENCH_VARS='<vars as JSON>' deno run ... bench-server.ts <function module>");
  Deno.exit(2);
}
const mod = (await import(new URL(`file://${modulePath}`).href)) as { default?: Partial<FetchApp> };
const app = mod.default;
if (typeof app?.fetch !== "function") {
  console.error(`${modulePath} has no default export with a fetch(request, env) method (a Hono app)`);
  Deno.exit(2);
}
const fetchApp = app as FetchApp;
const env = JSON.parse(Deno.env.get("WORKYARD_BENCH_VARS") ?? "{}") as Record<string, unknown>;
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: (addr) => console.log(JSON.stringify({ port: addr.port })) },
  (request) => fetchApp.fetch(request, env),
);
const close = () => void server.shutdown().then(() => Deno.exit(0));
Deno.addSignalListener("SIGTERM", close);
Deno.addSignalListener("SIGINT", close);

export {};
