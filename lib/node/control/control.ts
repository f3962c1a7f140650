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
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { bearerChecker, HttpError, listenLoopback, readJson, sendJson } from "../common/http.ts";
import { UserError } from "../common/user-error.ts";
import type { Scheduler } from "../cron/scheduler.ts";

export interface ControlInfo {
  url: string;
  token: string;
  pid: number;
}

const triggerSchema = z.object({ function: z.string().min(1), cron: z.string().optional() });
const releaseSchema = z.object({
  release: z
    .string()
    .regex(/^[0-9a-f]{6,64}$/)
    .optional(),
});

/** What the control endpoint serves; the release switches are absent where nothing can switch. */
export interface ControlHandlers {
  /** Undefined while the scheduler is off. */
  scheduler(): Scheduler | undefined;
  status(): unknown;
  deploy(release: string): Promise<unknown>;
  rollback(release?: string): Promise<unknown>;
}

/** A refused switch (a failed migration or readiness, an unknown release): answered 409 with its message. */
export class SwitchError extends UserError {}

const MAX_BODY = 64 * 1024;

function parse<T>(schema: z.ZodType<T>, body: unknown, hint: string): T {
  const input = schema.safeParse(body);
  if (!input.success) throw new HttpError(400, "invalid_input", hint);
  return input.data;
}

/** Starts the control endpoint and writes its address and token to `infoFile`. */
export async function startControl(handlers: ControlHandlers, infoFile: string): Promise<{ info: ControlInfo; stop(): Promise<void> }> {
  const token = randomBytes(24).toString("base64url");
  const authorized = bearerChecker(token);
  const server = await listenLoopback(async (req, res) => {
    if (!authorized(req)) throw new HttpError(401, "unauthorized", "Bad or missing token");
    const route = `${req.method} ${req.url}`;
    if (route === "GET /status") return sendJson(res, 200, handlers.status());
    if (route === "POST /deploy" || route === "POST /rollback") {
      const { release } = parse(releaseSchema, await readJson(req, MAX_BODY), 'Send {"release": "<release id>"}');
      if (route === "POST /deploy" && !release) throw new HttpError(400, "invalid_input", "Name the release to deploy");
      try {
        return sendJson(res, 200, route === "POST /deploy" ? await handlers.deploy(release ?? "") : await handlers.rollback(release));
      } catch (err) {
        if (err instanceof SwitchError) throw new HttpError(409, "switch_refused", err.message);
        throw err;
      }
    }
    const scheduler = handlers.scheduler();
    if (!scheduler && (req.url === "/crons" || req.url === "/trigger")) {
      throw new HttpError(409, "scheduler_off", "The scheduler is off here (WORKYARD_SCHEDULER=off)");
    }
    if (scheduler && route === "GET /crons") return sendJson(res, 200, await scheduler.listing());
    if (scheduler && route === "POST /trigger") {
      const input = parse(triggerSchema, await readJson(req, MAX_BODY), 'Send {"function": "<name>", "cron"?: "<expression>"}');
      try {
        return sendJson(res, 200, { run: await scheduler.trigger(input.function, input.cron) });
      } catch (err) {
        if (err instanceof UserError) throw new HttpError(400, "failed", err.message);
        throw err;
      }
    }
    throw new HttpError(404, "not_found", "GET /crons, POST /trigger, GET /status, POST /deploy or POST /rollback");
  });
  const info: ControlInfo = { url: server.url, token, pid: process.pid };
  await mkdir(dirname(infoFile), { recursive: true });
  await writeFile(infoFile, JSON.stringify(info), { mode: 0o600 });
  return {
    info,
    async stop() {
      await rm(infoFile, { force: true });
      await server.close();
    },
  };
}

/** Reads the running supervisor's control info, or explains that none is running. */
export async function readControlInfo(infoFile: string): Promise<ControlInfo> {
  const text = await readFile(infoFile, "utf8").catch(() => undefined);
  if (!text) throw new UserError("workyard is not running here: start it with npm start, then try again");
  const info = JSON.parse(text) as ControlInfo;
  try {
    process.kill(info.pid, 0);
  } catch {
    throw new UserError(`workyard is not running (the process ${info.pid} that wrote ${infoFile} is gone): start it with npm start`);
  }
  return info;
}

/** A refusal the control endpoint answered (not ok): its message, or the status when it gave none. */
export class ControlRequestError extends UserError {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
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
