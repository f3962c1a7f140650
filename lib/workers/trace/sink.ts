/**
 * The internal worker's trace sink: a function's worker hands its own records here (function.ts), in batches, and the
 * sink forwards them to the collector with the token the function never holds. Each binding's props name the function
 * it belongs to: a record says it is from that function whatever the batch claims, and carries no access records (the
 * gateway's, which count requests): a function's code can add lines to its own log, nothing more.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import type { TraceRecord } from "./record.ts";
import { collectorTransport } from "./sender.ts";
import type { CollectorEnv } from "./sender.ts";
import type { TraceSinkProps } from "../../shared/names.ts";

export class TraceSink extends WorkerEntrypoint<CollectorEnv, Partial<TraceSinkProps>> {
  async deliver(batch: string): Promise<void> {
    const worker = this.ctx.props.worker;
    const send = collectorTransport(this.env);
    if (!worker || !send || typeof batch !== "string") return;
    let records: unknown;
    try {
      records = JSON.parse(batch);
    } catch {
      return; // not from the platform's own code: the collector would refuse it anyway
    }
    if (!Array.isArray(records)) return;
    const own = records.filter((r): r is TraceRecord => typeof r === "object" && r !== null).map((r) => ({ ...r, worker, access: [] }));
    await send(own);
  }
}
