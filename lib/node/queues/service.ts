/**
 * The queue service: a loopback HTTP server in the supervisor that stores what functions send through their queue
 * bindings (forwarded by the internal worker's QueueProducer entrypoint, which adds the queue's name and this
 * service's token). It answers 200 only once the messages are committed in PostgreSQL (sends that arrive together share
 * a commit: group-commit.ts), and tells the dispatcher at
 * once, so a message sent on this node is delivered without waiting for a poll.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { bearerChecker, listenLoopback, readBody } from "../common/http.ts";
import { QUEUE_DELAY_HEADER, QUEUE_NAME_HEADER } from "../../shared/names.ts";
import { QUEUE_UNAVAILABLE } from "../../sdk/queue-errors.ts";
import type { QueueFigures, QueueStore } from "./store.ts";
import { isConnectFailure } from "../data/connect-failure.ts";
import { Backlogged, GroupCommit } from "./group-commit.ts";
import { batchMessages, MAX_BATCH_BYTES, SendRefused, singleMessage } from "./wire.ts";

export interface QueueServiceOptions {
  store: QueueStore;
  /** Called after messages are stored: the dispatcher wakes for them. */
  onSent: (queue: string, count: number) => void;
  log: (line: string) => void;
  token?: string;
}

export interface QueueService {
  url: string;
  token: string;
  stop(): Promise<void>;
}

/** A reason workerd can carry in an HTTP status line: one line of printable ASCII. */
const statusText = (reason: string) => reason.replace(/[^\x20-\x7e]+/g, " ").slice(0, 300);

function answer(res: ServerResponse, status: number, reason: string, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, statusText(reason), {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...(status === 200 ? {} : { "cf-queues-error-code": String(status), "cf-queues-error-cause": statusText(reason) }),
  });
  res.end(text);
}

/** workerd's metrics shape for one queue. */
function metricsOf(figures: QueueFigures | undefined) {
  return {
    backlogCount: figures ? figures.ready + figures.inFlight + figures.delayed : 0,
    backlogBytes: figures?.bytes ?? 0,
    oldestMessageTimestamp: figures && figures.oldestMs > 0 ? Date.now() - figures.oldestMs : 0,
  };
}

export async function startQueueService(opts: QueueServiceOptions): Promise<QueueService> {
  const token = opts.token ?? randomBytes(24).toString("base64url");
  const authorized = bearerChecker(token);
  const commits = new GroupCommit(opts.store);
  // Backlog figures for workerd's answers and metrics(): refreshed in the background, at most every 10 s (a read of
  // the whole table: never on a send's path).
  let figures = new Map<string, QueueFigures>();
  let figuresAt = 0;
  let refreshing = false;
  const refreshFigures = () => {
    if (refreshing || Date.now() - figuresAt < 10_000) return;
    refreshing = true;
    opts.store
      .figures()
      .then((rows) => {
        figures = new Map(rows.map((r) => [r.queue, r]));
        figuresAt = Date.now();
      })
      .catch(() => {})
      .finally(() => (refreshing = false));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!authorized(req)) return answer(res, 401, "the queue service needs its token", {});
    const queue = req.headers[QUEUE_NAME_HEADER];
    if (typeof queue !== "string" || queue === "") return answer(res, 400, "no queue named (x-workyard-queue)", {});
    const path = (req.url ?? "").split("?")[0];
    refreshFigures();
    if (req.method === "GET" && path === "/metrics") return answer(res, 200, "OK", metricsOf(figures.get(queue)));
    if (req.method !== "POST" || (path !== "/message" && path !== "/batch")) {
      return answer(res, 404, `no such queue operation: ${req.method} ${path}`, {});
    }
    const defaultDelay = Number(req.headers[QUEUE_DELAY_HEADER] ?? 0) || 0;
    const delay = req.headers["x-msg-delay-secs"] as string | undefined;
    try {
      // The body limit is the batch's, in base64 with its JSON around it; each message is checked on its own after.
      const body = await readBody(req, Math.ceil((MAX_BATCH_BYTES * 4) / 3) + 64 * 1024).catch((err: unknown) => {
        throw new SendRefused(413, (err as Error).message);
      });
      let messages;
      if (path === "/message") {
        messages = [singleMessage(body, { format: req.headers["x-msg-fmt"] as string | undefined, delay, defaultDelay })];
      } else {
        let json: unknown;
        try {
          json = JSON.parse(body.toString("utf8"));
        } catch {
          throw new SendRefused(400, "the batch is not JSON");
        }
        messages = batchMessages(json, { delay, defaultDelay });
      }
      await commits.send(queue, messages);
      opts.onSent(queue, messages.length);
      return answer(res, 200, "OK", { metadata: { metrics: metricsOf(figures.get(queue)) } });
    } catch (err) {
      if (err instanceof SendRefused) return answer(res, err.status, err.message, {});
      const reason = `${QUEUE_UNAVAILABLE} the queue store (PostgreSQL) did not take the message (${(err as Error).message}); nothing was stored`;
      if (!isConnectFailure(err) && !(err instanceof Backlogged))
        opts.log(`queues: a send to "${queue}" failed: ${(err as Error).message}`);
      return answer(res, 503, reason, {});
    }
  };

  const server = await listenLoopback(handle, { keepAliveTimeoutMs: 60_000 });
  return { url: server.url, token, stop: () => server.close() };
}
