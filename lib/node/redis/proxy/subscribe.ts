/**
 * Pub/sub over Server-Sent Events, as Upstash and `@upstash/redis`'s `subscribe()` speak it:
 * `data: subscribe,<channel>,<count>`, `data: message,<channel>,<message>`,
 * `data: pmessage,<pattern>,<channel>,<message>`. Each stream has its own subscriber connection,
 * closed when the client goes away.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { PubSubEvent, RedisBackend, Subscription } from "./backend.ts";

/** One SSE event; a message with line breaks becomes several `data:` lines, as the SSE format wants. */
export function sseEvent(event: PubSubEvent): string {
  let text: string;
  switch (event.kind) {
    case "subscribe":
    case "psubscribe":
      text = `${event.kind},${event.channel.toString("utf8")},${event.count}`;
      break;
    case "message":
      text = `message,${event.channel.toString("utf8")},${event.message.toString("utf8")}`;
      break;
    case "pmessage":
      text = `pmessage,${event.pattern.toString("utf8")},${event.channel.toString("utf8")},${event.message.toString("utf8")}`;
      break;
  }
  return `data: ${text.split(/\r\n|\r|\n/).join("\ndata: ")}\n\n`;
}

export interface SubscriptionStreams {
  /** Opens the subscription and streams it; throws (before anything was written) when it cannot. */
  serve(
    req: IncomingMessage,
    res: ServerResponse,
    mode: "channel" | "pattern",
    targets: string[],
    headers: Record<string, string>,
  ): Promise<void>;
  readonly active: number;
  /** Ends every open stream. */
  closeAll(): Promise<void>;
}

export function subscriptionStreams(backend: RedisBackend, heartbeatMs = 15_000): SubscriptionStreams {
  const open = new Set<() => Promise<void>>();
  return {
    get active() {
      return open.size;
    },
    async serve(req, res, mode, targets, headers) {
      req.resume(); // the body (`[]` from @upstash/redis) carries nothing
      let started = false;
      let gone = false;
      const early: string[] = [];
      const write = (chunk: string) => {
        if (gone) return;
        if (started) res.write(chunk);
        else early.push(chunk);
      };
      let subscription: Subscription | undefined = undefined;
      let heartbeat: NodeJS.Timeout | undefined = undefined;
      const finish = async () => {
        if (gone) return;
        gone = true;
        open.delete(finish);
        clearInterval(heartbeat);
        await subscription?.close();
        if (!res.writableEnded) res.end();
      };
      res.once("close", () => void finish());
      subscription = await backend.subscribe({
        mode,
        targets,
        onEvent: (event) => write(sseEvent(event)),
        onEnd: () => void finish(),
      });
      if (gone || res.destroyed) {
        // The client left while Redis was confirming.
        gone = false;
        await finish();
        return;
      }
      open.add(finish);
      res.writeHead(200, {
        ...headers,
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      });
      started = true;
      res.write(early.join(""));
      // Comments keep idle proxies from cutting the stream and reveal dead clients.
      heartbeat = setInterval(() => write(": keep-alive\n\n"), heartbeatMs);
      heartbeat.unref();
    },
    async closeAll() {
      await Promise.all([...open].map((finish) => finish()));
    },
  };
}
