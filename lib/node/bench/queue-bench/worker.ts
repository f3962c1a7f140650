/**
 * The queue bench's function (lib/node/bench/queues.ts): POST / {i} sends {i, sentAt} to the bench queue and
 * answers once it is stored; queue() posts each batch's [i, sentAt, startedAt] to REPORT_URL and acks it. pg-boss's
 * side of the bench does the same work in Node.
 */
interface Job {
  i: number;
  sentAt: number;
}

// The parts of workers-types' Queue and MessageBatch it uses (this folder is type-checked with the Node side).
interface Env {
  JOBS: { send(body: Job): Promise<unknown> };
  REPORT_URL: string;
}
interface Batch {
  messages: { body: Job }[];
  ackAll(): void;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { i } = (await request.json()) as { i: number };
    await env.JOBS.send({ i, sentAt: Date.now() });
    return new Response("sent");
  },
  async queue(batch: Batch, env: Env): Promise<void> {
    const startedAt = Date.now();
    const rows = batch.messages.map((m) => [m.body.i, m.body.sentAt, startedAt]);
    const res = await fetch(env.REPORT_URL, { method: "POST", body: JSON.stringify(rows) });
    await res.body?.cancel();
    batch.ackAll();
  },
};
