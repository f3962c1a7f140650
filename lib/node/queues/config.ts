/**
 * Queues as functions declare them in Wrangler's own form ([[queues.producers]], [[queues.consumers]] in
 * functions/<name>/wrangler.toml), with Cloudflare's defaults applied, and the checks that span the project: one
 * consumer per queue (as on Cloudflare), no queue its own dead-letter queue.
 */
import type { FunctionSource } from "../build/functions.ts";
import { ConfigError } from "../build/wrangler-config.ts";
import type { FunctionEntry, QueueConsumer, QueueProducer } from "../releases/manifest.ts";

/** Cloudflare's defaults (developers.cloudflare.com/queues/configuration/configure-queues). */
export const QUEUE_DEFAULTS = { maxBatchSize: 10, maxBatchTimeoutSeconds: 5, maxRetries: 3, retryDelay: 0 } as const;
/** Batches of one queue delivered at once per node when max_concurrency is not set (Cloudflare scales on its own). */
export const DEFAULT_MAX_CONCURRENCY = 4;
/** How long one queue() call may take when [workyard] queue_timeout_ms is not set. */
export const DEFAULT_QUEUE_TIMEOUT_MS = 60_000;

/** A function's queues for its manifest entry. */
export function functionQueues(fn: FunctionSource): { producers: QueueProducer[]; consumers: QueueConsumer[] } {
  const q = fn.config.queues ?? {};
  return {
    producers: (q.producers ?? []).map((p) => ({ binding: p.binding, queue: p.queue, deliveryDelay: p.delivery_delay ?? 0 })),
    consumers: (q.consumers ?? []).map((c) => ({
      queue: c.queue,
      maxBatchSize: c.max_batch_size ?? QUEUE_DEFAULTS.maxBatchSize,
      maxBatchTimeoutMs: Math.round((c.max_batch_timeout ?? QUEUE_DEFAULTS.maxBatchTimeoutSeconds) * 1000),
      maxRetries: c.max_retries ?? QUEUE_DEFAULTS.maxRetries,
      ...(c.dead_letter_queue ? { deadLetterQueue: c.dead_letter_queue } : {}),
      retryDelay: c.retry_delay ?? QUEUE_DEFAULTS.retryDelay,
      maxConcurrency: c.max_concurrency ?? DEFAULT_MAX_CONCURRENCY,
      timeoutMs: fn.route.queue_timeout_ms ?? DEFAULT_QUEUE_TIMEOUT_MS,
    })),
  };
}

/** A consumed queue with the function that consumes it. */
export interface ConsumerOf extends QueueConsumer {
  functionName: string;
}

/** Every consumer of a release. */
export function consumersOf(functions: Pick<FunctionEntry, "name" | "queues">[]): ConsumerOf[] {
  return functions.flatMap((fn) => (fn.queues?.consumers ?? []).map((c) => ({ ...c, functionName: fn.name })));
}

/** What the project-wide checks read of a function. */
type Declaring = Pick<FunctionEntry, "name" | "vars" | "secrets" | "queues">;

/** Refuses what cannot work across the project: a binding declared twice or clashing, two consumers of a queue. */
export function checkQueues(functions: Declaring[]): void {
  const consumers = new Map<string, string>();
  for (const fn of functions) {
    const bindings = new Set<string>();
    for (const p of fn.queues?.producers ?? []) {
      if (bindings.has(p.binding)) throw new ConfigError(`functions/${fn.name}: the queue binding ${p.binding} is declared twice`);
      if (Object.hasOwn(fn.vars, p.binding) || fn.secrets.includes(p.binding)) {
        throw new ConfigError(`functions/${fn.name}: ${p.binding} is both a queue binding and a var or secret; rename one`);
      }
      bindings.add(p.binding);
    }
    for (const c of fn.queues?.consumers ?? []) {
      const other = consumers.get(c.queue);
      if (other !== undefined) {
        throw new ConfigError(
          `the queue "${c.queue}" has two consumers, functions/${other} and functions/${fn.name}: a queue has one consumer ` +
            "(as on Cloudflare); send to two queues instead",
        );
      }
      if (c.deadLetterQueue === c.queue) {
        throw new ConfigError(`functions/${fn.name}: the queue "${c.queue}" cannot be its own dead_letter_queue`);
      }
      consumers.set(c.queue, fn.name);
    }
  }
}

/**
 * What works but is likely a mistake: a queue that functions send to and no function consumes keeps its messages
 * until one does.
 */
export function queueWarnings(functions: Declaring[]): string[] {
  const consumed = new Set(consumersOf(functions).map((c) => c.queue));
  const senders = new Map<string, string[]>();
  for (const fn of functions) for (const p of fn.queues?.producers ?? []) senders.set(p.queue, [...(senders.get(p.queue) ?? []), fn.name]);
  return [...senders]
    .filter(([queue]) => !consumed.has(queue))
    .map(
      ([queue, names]) =>
        `warning: ${names.map((s) => `functions/${s}`).join(", ")} send${names.length === 1 ? "s" : ""} to the queue "${queue}", ` +
        "which no function consumes: its messages wait until one does ([[queues.consumers]] in a function's wrangler.toml)",
    );
}
