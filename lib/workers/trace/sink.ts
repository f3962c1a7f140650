/**
 * The internal worker's trace sink: a function's worker hands its own records here (function.ts), in batches, and the
 * sink passes them on to the collector with the token the function never holds, batched with every other function's
 * of this process (sender.ts). Each binding's props name the function it belongs to: a record always counts as that
 * function's, whatever it claims, and carries no access records (the gateway's, which count requests). What is left a
 * function's code could forge, if it reached the binding (through `import { env } from "cloudflare:workers"`), is its
 * own log lines and errors and its own cron runs' counts; the collector bounds the labels those make (an outcome
 * outside workerd's few counts as "unknown") and settles errors per function and request id, so none of it reaches
 * another function's figures.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { recordSchema } from "./schema.ts";
import { collectorTransport, deliver } from "./sender.ts";
import type { CollectorEnv } from "./sender.ts";
import type { TraceSinkProps } from "../../shared/names.ts";

/** A batch larger than this is not the platform's (its own are at most 500 records of bounded lines): dropped. */
const MAX_BATCH_CHARS = 8 * 1024 * 1024;
const MAX_RECORDS = 1000;

export class TraceSink extends WorkerEntrypoint<CollectorEnv, Partial<TraceSinkProps>> {
  deliver(batch: string): void {
    const worker = this.ctx.props.worker;
    const send = collectorTransport(this.env);
    if (!worker || !send || typeof batch !== "string" || batch.length > MAX_BATCH_CHARS) return;
    let records: unknown;
    try {
      records = JSON.parse(batch);
    } catch {
      return; // not from the platform's own code: the collector would refuse it anyway
    }
    if (!Array.isArray(records)) return;
    // Record by record: they join other functions' in the batch to the collector, which would refuse all for one.
    const own = records.slice(0, MAX_RECORDS).flatMap((r: unknown) => {
      const parsed = recordSchema.safeParse(r);
      return parsed.success ? [{ ...parsed.data, worker, access: [] }] : [];
    });
    deliver(own, send, this.ctx);
  }
}
