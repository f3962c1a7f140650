/**
 * The supervisor's control endpoint, for the project's own commands (`npm run trigger`, `npm run crons`,
 * `npm run deploy`, `npm run rollback`): a small HTTP server on loopback that needs a bearer token. Its
 * address and token are written to .workyard/run/control.json (mode 0600), which only the project's owner
 * can read.
 *   GET  /crons                          each cron with its next fire time and last runs
 *   POST /trigger {function, cron?}      fires one by hand and answers the recorded run
 *   GET  /status                         the live release and its processes
 *   POST /deploy {release}               migrates, then switches to that (already built) release
 *   POST /rollback {release?}            switches back to the previous release (or the one named)
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { tokenChecker } from "../redis/proxy/auth.ts";
import type { Scheduler } from "../cron/scheduler.ts";

export interface ControlInfo {
  url: string;
  token: string;
  pid: number;
}

const triggerSchema = z.object({ function: z.string().min(1), cron: z.string().optional() });
const releaseSchema = z.object({ release: z.string().regex(/^[0-9a-f]{6,64}$/).optional() });

/** What the control endpoint serves; the release switches are absent where nothing can switch. */
export interface ControlHandlers {
  /** Undefined while the scheduler is off. */
  scheduler(): Scheduler | undefined;
  status(): unknown;
  deploy(release: string): Promise<unknown>;
  rollback(release?: string): Promise<unknown>;
}

/** A refused switch (a failed migration or readiness, an unknown release): answered 409 with its message. */
export class SwitchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SwitchError";
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error("body too large");
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
}

/** Starts the control endpoint and writes its address and token to `infoFile`. */
export async function startControl(handlers: ControlHandlers, infoFile: string): Promise<{ info: ControlInfo; stop(): Promise<void> }> {
  const token = randomBytes(24).toString("base64url");
  const checkToken = tokenChecker(token);
  const server = createServer((req, res) => {
    // Exactly `Authorization: Bearer <token>` (no other scheme spelling, no query parameter).
    if (!checkToken(/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1])) return send(res, 401, { error: { code: "unauthorized", message: "Bad or missing token" } });
    void (async () => {
      try {
        if (req.method === "GET" && req.url === "/status") return send(res, 200, handlers.status());
        if (req.method === "POST" && (req.url === "/deploy" || req.url === "/rollback")) {
          const input = releaseSchema.safeParse(await readBody(req));
          if (!input.success) return send(res, 400, { error: { code: "invalid_input", message: 'Send {"release": "<release id>"}' } });
          const release = input.data.release;
          if (req.url === "/deploy" && !release) return send(res, 400, { error: { code: "invalid_input", message: "Name the release to deploy" } });
          try {
            return send(res, 200, req.url === "/deploy" ? await handlers.deploy(release ?? "") : await handlers.rollback(release));
          } catch (err) {
            if (err instanceof SwitchError) return send(res, 409, { error: { code: "switch_refused", message: err.message } });
            throw err;
          }
        }
        const scheduler = handlers.scheduler();
        if (!scheduler && (req.url === "/crons" || req.url === "/trigger")) {
          return send(res, 409, { error: { code: "scheduler_off", message: "The scheduler is off here (WORKYARD_SCHEDULER=off)" } });
        }
        if (scheduler && req.method === "GET" && req.url === "/crons") return send(res, 200, await scheduler.listing());
        if (scheduler && req.method === "POST" && req.url === "/trigger") {
          const input = triggerSchema.safeParse(await readBody(req));
          if (!input.success) return send(res, 400, { error: { code: "invalid_input", message: 'Send {"function": "<name>", "cron"?: "<expression>"}' } });
          const run = await scheduler.trigger(input.data.function, input.data.cron);
          return send(res, 200, { run });
        }
        send(res, 404, { error: { code: "not_found", message: "GET /crons, POST /trigger, GET /status, POST /deploy or POST /rollback" } });
      } catch (err) {
        send(res, 400, { error: { code: "failed", message: (err as Error).message } });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const info: ControlInfo = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token, pid: process.pid };
  await mkdir(dirname(infoFile), { recursive: true });
  await writeFile(infoFile, JSON.stringify(info), { mode: 0o600 });
  return {
    info,
    async stop() {
      await rm(infoFile, { force: true });
      await new Promise((r) => server.close(r));
    },
  };
}

/** Reads the running supervisor's control info, or explains that none is running. */
export async function readControlInfo(infoFile: string): Promise<ControlInfo> {
  const text = await readFile(infoFile, "utf8").catch(() => undefined);
  if (!text) throw new Error("workyard is not running here: start it with npm start, then try again");
  const info = JSON.parse(text) as ControlInfo;
  try {
    process.kill(info.pid, 0);
  } catch {
    throw new Error(`workyard is not running (the process ${info.pid} that wrote ${infoFile} is gone): start it with npm start`);
  }
  return info;
}

/** A refusal the control endpoint answered (not ok): its message, or the status when it gave none. */
export class ControlRequestError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = "ControlRequestError";
    this.status = status;
  }
}

/**
 * Asks the running supervisor's control endpoint (`info` from readControlInfo) and answers its JSON; throws
 * ControlRequestError with the endpoint's message when it refuses.
 */
export async function controlRequest<T>(info: ControlInfo, method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${info.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${info.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = (await res.json()) as T & { error?: { message: string } };
  if (!res.ok) throw new ControlRequestError(answer.error?.message ?? `the supervisor answered ${res.status}`, res.status);
  return answer;
}
