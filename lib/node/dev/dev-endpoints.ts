/**
 * The dev server's own endpoints, on a loopback port of their own (never on the public gateway port):
 *   GET  /__dev                              the functions and their crons
 *   POST /__dev/scheduled/<function>?cron=…  fires the function's scheduled() now; answers { outcome }
 * Without ?cron the function's first declared cron is used.
 */
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ScheduledResult {
  outcome: string;
  noRetry?: boolean;
}

export interface DevEndpointsTarget {
  /** The functions served now, with their declared crons. */
  functions(): { name: string; crons: string[] }[];
  fireScheduled(name: string, cron: string): Promise<ScheduledResult>;
}

export interface DevEndpoints {
  url: string;
  stop(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

const error = (res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>) =>
  send(res, status, { error: { code, message } }, headers);

async function handle(target: DevEndpointsTarget, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://dev.invalid");
  if (url.pathname === "/__dev" || url.pathname === "/__dev/") {
    if (req.method !== "GET") return error(res, 405, "method_not_allowed", `${req.method} is not allowed here; use GET`, { allow: "GET" });
    return send(res, 200, { functions: target.functions() });
  }
  const match = /^\/__dev\/scheduled\/([^/]+)\/?$/.exec(url.pathname);
  if (!match?.[1]) return error(res, 404, "not_found", "Try GET /__dev or POST /__dev/scheduled/<function>?cron=...");
  if (req.method !== "POST") return error(res, 405, "method_not_allowed", `${req.method} is not allowed here; use POST`, { allow: "POST" });
  const name = decodeURIComponent(match[1]);
  const fn = target.functions().find((f) => f.name === name);
  if (!fn) return error(res, 404, "not_found", `No function named "${name.slice(0, 64)}"`);
  const cron = url.searchParams.get("cron") ?? fn.crons[0];
  if (cron === undefined || cron === "") {
    return error(res, 400, "bad_request", `functions/${name} declares no cron: pass one, e.g. ?cron=${encodeURIComponent("*/5 * * * *")}`);
  }
  const result = await target.fireScheduled(name, cron);
  send(res, 200, { function: name, cron, ...result });
}

/** Serves the dev endpoints on 127.0.0.1:`port` (0 picks a free one). */
export async function startDevEndpoints(target: DevEndpointsTarget, port = 0): Promise<DevEndpoints> {
  const server = createServer((req, res) => {
    handle(target, req, res).catch((err: unknown) => error(res, 500, "internal_error", (err as Error).message));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port }, resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
