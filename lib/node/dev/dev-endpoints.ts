/**
 * The dev server's own endpoints, on a loopback port of their own (never on the public gateway port):
 *   GET  /__dev                              the functions and their crons
 *   POST /__dev/scheduled/<function>?cron=…  fires the function's scheduled() now; answers { outcome }
 * Without ?cron the function's first declared cron is used.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError, listenLoopback, sendJson } from "../common/http.ts";

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

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "bad_request", "The function name is not valid percent-encoding");
  }
}

async function handle(target: DevEndpointsTarget, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://dev.invalid");
  if (url.pathname === "/__dev" || url.pathname === "/__dev/") {
    if (req.method !== "GET")
      throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed here; use GET`, { allow: "GET" });
    return sendJson(res, 200, { functions: target.functions() });
  }
  const match = /^\/__dev\/scheduled\/([^/]+)\/?$/.exec(url.pathname);
  if (!match?.[1]) throw new HttpError(404, "not_found", "Try GET /__dev or POST /__dev/scheduled/<function>?cron=...");
  if (req.method !== "POST")
    throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed here; use POST`, { allow: "POST" });
  const name = decoded(match[1]);
  const fn = target.functions().find((f) => f.name === name);
  if (!fn) throw new HttpError(404, "not_found", `No function named "${name.slice(0, 64)}"`);
  const cron = url.searchParams.get("cron") ?? fn.crons[0];
  if (cron === undefined || cron === "") {
    throw new HttpError(
      400,
      "bad_request",
      `functions/${name} declares no cron: pass one, e.g. ?cron=${encodeURIComponent("*/5 * * * *")}`,
    );
  }
  const result = await target.fireScheduled(name, cron);
  sendJson(res, 200, { function: name, cron, ...result });
}

/** Serves the dev endpoints on 127.0.0.1:`port` (0 picks a free one). */
export async function startDevEndpoints(target: DevEndpointsTarget, port = 0): Promise<DevEndpoints> {
  const server = await listenLoopback((req, res) => handle(target, req, res), { port });
  return { url: server.url, stop: () => server.close() };
}
