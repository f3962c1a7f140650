/**
 * A trace record's shape as data from outside is checked against it: by the internal worker's trace sink, record by
 * record (a function's batch is code the platform does not control), and by the collector at its edge, batch by batch.
 */
import { z } from "zod";
import type { TraceRecord } from "./record.ts";
import { BREAKER_STATES, TRY_OUTCOMES } from "../../shared/outbound-event.ts";
import { UPSTREAM_NAME } from "../../shared/upstream-policy.ts";

const access = z.object({
  id: z.string().max(200),
  fn: z.string().max(200).nullable(),
  method: z.string().max(32),
  path: z.string().max(2048),
  status: z.number().int(),
  ms: z.number().nonnegative(),
  ip: z.string().max(100),
  inflight: z.number().int().nonnegative(),
  proc: z.string().max(100),
  ts: z.number().optional(),
});

const outboundEvent = z.object({
  upstream: z.string().regex(UPSTREAM_NAME),
  attempt: z.number().int().min(0).max(100),
  outcome: z.enum(TRY_OUTCOMES),
  status: z.number().int().optional(),
  ms: z.number().nonnegative(),
  state: z.enum(BREAKER_STATES),
  since: z.number().nonnegative(),
  scope: z.enum(["shared", "isolate"]),
  change: z.enum(BREAKER_STATES).optional(),
});

const count = z.number().int().nonnegative().max(1e9);

/** One record, as the trace sink and the collector take it. */
export const recordSchema = z.object({
  worker: z.string().max(200),
  ts: z.number(),
  outcome: z.string().max(64),
  request: z.object({ id: z.string().nullable(), method: z.string(), url: z.string(), status: z.number().int().nullable() }).optional(),
  cron: z.string().optional(),
  access: z.array(access),
  logs: z.array(z.object({ ts: z.number(), level: z.string().max(16), message: z.array(z.unknown()) })),
  exceptions: z.array(z.object({ ts: z.number(), name: z.string(), message: z.string(), stack: z.string() })),
  outbound: z.array(outboundEvent).max(1000).optional(),
  dbCache: z.object({ hit: count, miss: count, bypass: count, local: count, remote: count }).partial().optional(),
});

export const batchSchema = z.array(recordSchema) satisfies z.ZodType<TraceRecord[]>;
