/**
 * A queue binding for a function on Deno: the Workers producer API (`send`, `sendBatch`, `metrics`) over the same HTTP
 * wire format workerd's queue binding speaks (../shared/notes: POST /message with X-Msg-Fmt, POST /batch with base64
 * bodies, GET /metrics), sent to workyard's queue service with the queue's name and the service's token, as the
 * internal worker's QueueProducer entrypoint does for workerd (lib/workers/queue-producer.ts). `send` resolves once the
 * message is stored in PostgreSQL. A failure throws the SDK's "queue unavailable:" error, which a function's error
 * handler answers with 503 (lib/sdk/queue-errors.ts).
 */
import { QUEUE_DELAY_HEADER, QUEUE_NAME_HEADER } from "../shared/names.ts";
import { QUEUE_UNAVAILABLE } from "../sdk/queue-errors.ts";

export interface QueueService {
  url: string;
  token: string;
}

type ContentType = "json" | "text" | "bytes" | "v8";

interface SendOptions {
  contentType?: ContentType;
  delaySeconds?: number;
}

/** A message's body as workerd serializes it for the wire, by content type. */
function serialize(body: unknown, contentType: ContentType): Uint8Array<ArrayBuffer> {
  switch (contentType) {
    case "text":
      if (typeof body !== "string") throw new TypeError('A "text" queue message must be a string');
      return new TextEncoder().encode(body);
    case "bytes":
      if (body instanceof ArrayBuffer) return new Uint8Array(body);
      if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice();
      throw new TypeError('A "bytes" queue message must be an ArrayBuffer or a typed array');
    case "json": {
      const text = JSON.stringify(body);
      if (text === undefined) throw new TypeError("This queue message cannot be sent as JSON");
      return new TextEncoder().encode(text);
    }
    default:
      throw new TypeError(`Content type "${contentType}" is not supported for queue messages on Deno; use "json", "text" or "bytes"`);
  }
}

const base64 = (bytes: Uint8Array) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));

export class DenoQueueProducer {
  readonly #queue: string;
  readonly #deliveryDelay: number | undefined;
  readonly #service: QueueService | undefined;

  constructor(queue: string, deliveryDelay: number | undefined, service: QueueService | undefined) {
    this.#queue = queue;
    this.#deliveryDelay = deliveryDelay;
    this.#service = service;
  }

  async send(body: unknown, { contentType = "json", delaySeconds }: SendOptions = {}): Promise<void> {
    const headers: Record<string, string> = { "x-msg-fmt": contentType };
    if (delaySeconds !== undefined) headers["x-msg-delay-secs"] = String(delaySeconds);
    await (await this.#call("send", "/message", { method: "POST", headers, body: serialize(body, contentType) })).body?.cancel();
  }

  async sendBatch(messages: Iterable<{ body: unknown } & SendOptions>, { delaySeconds }: { delaySeconds?: number } = {}): Promise<void> {
    const wire = [...messages].map(({ body, contentType = "json", delaySeconds: own }) => ({
      body: base64(serialize(body, contentType)),
      contentType,
      ...(own !== undefined ? { delaySecs: own } : {}),
    }));
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (delaySeconds !== undefined) headers["x-msg-delay-secs"] = String(delaySeconds);
    await (await this.#call("sendBatch", "/batch", { method: "POST", headers, body: JSON.stringify({ messages: wire }) })).body?.cancel();
  }

  async metrics(): Promise<{ backlogCount: number; backlogBytes: number; oldestMessageTimestamp: number }> {
    const res = await this.#call("metrics", "/metrics", { method: "GET", headers: {} });
    return (await res.json()) as { backlogCount: number; backlogBytes: number; oldestMessageTimestamp: number };
  }

  async #call(what: string, path: string, init: { method: string; headers: Record<string, string>; body?: BodyInit }) {
    const failed = (reason: string) => new Error(`Queue ${what} failed: ${QUEUE_UNAVAILABLE} ${reason}`);
    if (!this.#service) throw failed("no queue service is configured for this process (npm run deno starts one)");
    const headers: Record<string, string> = {
      ...init.headers,
      [QUEUE_NAME_HEADER]: this.#queue,
      authorization: `Bearer ${this.#service.token}`,
    };
    if (this.#deliveryDelay) headers[QUEUE_DELAY_HEADER] = String(this.#deliveryDelay);
    let res: Response;
    try {
      res = await fetch(`${this.#service.url}${path}`, { ...init, headers });
    } catch (err) {
      throw failed(`the queue service did not answer (${(err as Error).message}); nothing was stored`);
    }
    if (res.ok) return res;
    await res.body?.cancel();
    // The service says why in cf-queues-error-cause (and its status line, which Deno's fetch replaces with the standard
    // text): a 503's reason starts with "queue unavailable:", which the SDK answers with 503.
    const reason = res.headers.get("cf-queues-error-cause") ?? `status ${res.status}`;
    throw new Error(`Queue ${what} failed: ${reason}`);
  }
}
