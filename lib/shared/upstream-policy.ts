/**
 * How a function calls one upstream (an outside service it depends on): the keys of `[workyard.upstreams.<name>]` in
 * wrangler.toml and of `defineUpstreams({ <name>: {...} })` in code, the same in both. The build checks the file's
 * tables with this schema and hands them to the function as the WORKYARD_UPSTREAMS var (so `wrangler deploy` carries
 * them too); the SDK's outbound helper merges code and file (the file wins, key by key) and fills in the defaults.
 */
import { z } from "zod";

/** The var that carries the upstream tables of the function's wrangler.toml files. */
export const UPSTREAMS_VAR = "WORKYARD_UPSTREAMS";

/** An upstream's name: as a queue's, lowercase letters, digits and -, so it is safe in a metric label and a Redis key. */
export const UPSTREAM_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const upstreamName = z.string().regex(UPSTREAM_NAME, "an upstream name: lowercase letters, digits and -, up to 63 characters");

const ms = (max: number) => z.number().int().min(0).max(max);

/** Each key as a user may write it; every key is optional (UPSTREAM_DEFAULTS fills the rest). */
export const upstreamSettingsSchema = z.strictObject({
  /** The upstream's base URL, handed to the call (`upstream.url`) and against which `upstream.fetch("/path")` resolves. */
  url: z.url({ protocol: /^https?$/ }).optional(),
  /** How long one try may take before it is abandoned (its signal aborts) and counted as a timeout. */
  timeout_ms: ms(600_000).min(1).optional(),
  /** Tries after the first, for an idempotent call only (see retry_non_idempotent). */
  retries: z.number().int().min(0).max(10).optional(),
  /** The first retry's delay; each next one grows (exponential backoff with decorrelated jitter) up to retry_max_delay_ms. */
  retry_delay_ms: ms(60_000).optional(),
  retry_max_delay_ms: ms(600_000).optional(),
  /** Retry calls the helper cannot tell are idempotent (a POST, say): only when the upstream drops duplicates. */
  retry_non_idempotent: z.boolean().optional(),
  /**
   * What opens the breaker: "consecutive" failures (`failures` in a row), a "sampling" failure ratio over a window,
   * or "off" (no breaker).
   */
  breaker: z.enum(["consecutive", "sampling", "off"]).optional(),
  failures: z.number().int().min(1).max(1000).optional(),
  failure_ratio: z.number().gt(0).max(1).optional(),
  window_ms: ms(3_600_000).min(1000).optional(),
  /** Calls the window must hold before its ratio can open the breaker. */
  min_calls: z.number().int().min(1).max(100_000).optional(),
  /** How long an open breaker fails calls at once before it lets one probe through (half-open). */
  half_open_after_ms: ms(3_600_000).min(100).optional(),
  /** Each failed probe doubles the wait, up to this. */
  max_half_open_after_ms: ms(86_400_000).min(100).optional(),
  /** Calls in flight at once per isolate (a bulkhead); one more is refused at once. Unset: no limit. */
  max_in_flight: z.number().int().min(1).max(100_000).optional(),
  /** Another upstream to call when this one fails or its breaker is open. */
  failover: upstreamName.optional(),
  /**
   * Share the breaker's state through Redis (the function's UPSTASH_REDIS_REST_* bindings) with every isolate and
   * process using the same Redis; false, or no Redis bindings: each isolate keeps its own.
   */
  shared: z.boolean().optional(),
  /** How old a process's copy of the shared state may get before the next call reads it again. */
  sync_ms: ms(60_000).optional(),
});

/** What a user writes, in code or in wrangler.toml. */
export type UpstreamSettings = z.infer<typeof upstreamSettingsSchema>;

export const UPSTREAM_DEFAULTS = {
  timeout_ms: 10_000,
  retries: 2,
  retry_delay_ms: 100,
  retry_max_delay_ms: 5_000,
  retry_non_idempotent: false,
  breaker: "consecutive",
  failures: 5,
  failure_ratio: 0.5,
  window_ms: 30_000,
  min_calls: 10,
  half_open_after_ms: 10_000,
  max_half_open_after_ms: 300_000,
  shared: true,
  sync_ms: 1000,
} as const satisfies UpstreamSettings;

/** An upstream's whole policy: what was written over the defaults. */
export type UpstreamPolicy = Omit<Required<UpstreamSettings>, "url" | "max_in_flight" | "failover"> &
  Pick<UpstreamSettings, "url" | "max_in_flight" | "failover">;

/** The settings over the defaults. */
export function upstreamPolicy(settings: UpstreamSettings): UpstreamPolicy {
  return { ...UPSTREAM_DEFAULTS, ...settings };
}

/** The tables of a wrangler.toml, `{ <name>: settings }`. */
export const upstreamTablesSchema = z.record(upstreamName, upstreamSettingsSchema);
export type UpstreamTables = z.infer<typeof upstreamTablesSchema>;

/** The chain of upstreams a call to `name` may try (itself, its failover, that one's ...), or the problem with it. */
export function failoverChain(name: string, tables: Readonly<Record<string, UpstreamSettings>>): string[] | { problem: string } {
  const chain = [name];
  for (let next = tables[name]?.failover; next !== undefined; next = tables[next]?.failover) {
    if (chain.includes(next)) return { problem: `upstream "${name}" fails over in a circle: ${[...chain, next].join(" → ")}` };
    chain.push(next);
  }
  return chain;
}
