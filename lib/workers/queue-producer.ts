/**
 * Where a function's queue binding sends: an entrypoint of the internal worker, named in each `queue` binding with
 * props that name the queue (workerd's producer requests do not). It forwards workerd's producer request as it is
 * (POST /message, POST /batch, GET /metrics; the wire format in ../shared/notes) to the supervisor's queue service,
 * which stores the messages in PostgreSQL and answers once they are committed. So `send()` resolves only when its
 * message is durable, and a failure reaches the function as workerd's "Queue send failed: <reason>".
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { QUEUE_DELAY_HEADER, QUEUE_NAME_HEADER, QUEUE_SERVICE_TOKEN_VAR, QUEUE_SERVICE_URL_VAR } from "../shared/names.ts";
import type { QueueProducerProps } from "../shared/names.ts";
import { QUEUE_UNAVAILABLE } from "../sdk/queue-errors.ts";

interface ProducerEnv {
  [QUEUE_SERVICE_URL_VAR]?: string;
  [QUEUE_SERVICE_TOKEN_VAR]?: string;
}

/** workerd reads an error's reason from the status text; a 503 here is a send that was not stored. */
const failure = (status: number, reason: string) => new Response(reason, { status, statusText: reason.slice(0, 200) });

export class QueueProducer extends WorkerEntrypoint<ProducerEnv, Partial<QueueProducerProps>> {
  override async fetch(request: Request): Promise<Response> {
    const { queue, deliveryDelay } = this.ctx.props;
    const url = this.env[QUEUE_SERVICE_URL_VAR];
    if (!queue) return failure(500, "this queue binding names no queue (a workyard build error)");
    if (!url)
      return failure(503, `${QUEUE_UNAVAILABLE} no queue service is configured (WORKYARD_QUEUE_URL): start workyard with npm start`);
    const headers = new Headers(request.headers);
    headers.set(QUEUE_NAME_HEADER, queue);
    if (deliveryDelay) headers.set(QUEUE_DELAY_HEADER, String(deliveryDelay));
    headers.set("authorization", `Bearer ${this.env[QUEUE_SERVICE_TOKEN_VAR] ?? ""}`);
    const { pathname } = new URL(request.url);
    try {
      return await fetch(`${url}${pathname}`, { method: request.method, headers, body: request.body });
    } catch (err) {
      return failure(503, `${QUEUE_UNAVAILABLE} the queue service did not answer (${(err as Error).message}); nothing was stored`);
    }
  }
}
