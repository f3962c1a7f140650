/**
 * Breaker records in Redis, one hash per upstream (`workyard:upstream:<name>`), shared by every isolate, workerd process
 * and node that uses the same Redis (through the project's proxy, or Upstash on Cloudflare and Deno). Each change is
 * one Lua script (breaker-state.ts's rules, run atomically by Redis), sent only when something happens: a read
 * every sync_ms per isolate while calls flow, a write when a breaker opens, probes or closes; a call through a closed
 * breaker whose copy is fresh costs nothing here. A record untouched for a week expires (closed is the default).
 */
import type { Redis } from "@upstash/redis/cloudflare";
import type { BreakerRecord, BreakerState, Changed, Waits } from "./breaker-state.ts";
import type { BreakerStore } from "./store.ts";

export const BREAKER_KEY_PREFIX = "workyard:upstream:";
const TTL_MS = 7 * 24 * 3600 * 1000;

const SCRIPT = `
local f = redis.call('HMGET', KEYS[1], 'state', 'since', 'opens', 'probe_until', 'version', 'failures')
-- A missing field is false in Redis (nil in some embeddings): anything not a number is 0, anything not a state closed.
-- Numbers are written with %.0f: milliseconds since the epoch are past a 32-bit integer (the embedded Lua's) and %d refuses them.
local function num(v) return tonumber(v) or 0 end
local state = f[1]
if state ~= 'open' and state ~= 'half_open' then state = 'closed' end
local since = num(f[2])
local opens = num(f[3])
local probe_until = num(f[4])
local version = num(f[5])
local failures = num(f[6])
local op = ARGV[1]
local now = tonumber(ARGV[2])
local changed = 0
local granted = 0
local counted = 0
if op == 'fail' then
  if state == 'closed' then
    failures = failures + 1
    counted = 1
    if failures >= tonumber(ARGV[3]) then op = 'trip' end
  end
elseif op == 'succeed' then
  if failures > 0 then
    failures = 0
    counted = 1
  end
end
if op == 'trip' then
  if state ~= 'open' then
    if state == 'half_open' then opens = opens + 1 else opens = 1 end
    state = 'open'
    since = now
    failures = 0
    probe_until = 0
    changed = 1
  end
elseif op == 'probe' then
  if state == 'closed' then
    granted = 1
  else
    local first = tonumber(ARGV[3])
    local wait = math.min(first * 2 ^ math.max(0, opens - 1), math.max(first, tonumber(ARGV[4])))
    if (state == 'open' and now >= since + wait) or (state == 'half_open' and now >= probe_until) then
      if state == 'open' then since = now end
      state = 'half_open'
      failures = 0
      probe_until = tonumber(ARGV[5])
      changed = 1
      granted = 1
    end
  end
elseif op == 'close' then
  if state == 'half_open' then
    state = 'closed'
    since = now
    failures = 0
    opens = 0
    probe_until = 0
    changed = 1
  end
end
if changed == 1 then version = version + 1 end
if changed == 1 or counted == 1 then
  redis.call('HSET', KEYS[1], 'state', state, 'since', string.format('%.0f', since), 'opens', string.format('%.0f', opens),
    'probe_until', string.format('%.0f', probe_until), 'version', string.format('%.0f', version), 'failures', string.format('%.0f', failures))
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return {state, string.format('%.0f', since), string.format('%.0f', opens), string.format('%.0f', probe_until), string.format('%.0f', version),
  changed, granted, string.format('%.0f', failures)}
`;

type Reply = [BreakerState, string | number, string | number, string | number, string | number, number, number, string | number];

const STATES = new Set<string>(["closed", "open", "half_open"]);

function parse(reply: unknown): { record: BreakerRecord; changed: boolean; granted: boolean } {
  if (!Array.isArray(reply) || reply.length !== 8 || !STATES.has(String(reply[0])))
    throw new Error(`the breaker script answered ${JSON.stringify(reply)}, not a breaker record`);
  const [state, since, opens, probeUntil, version, changed, granted, failures] = reply as Reply;
  return {
    record: {
      state,
      since: Number(since),
      failures: Number(failures),
      opens: Number(opens),
      probeUntil: Number(probeUntil),
      version: Number(version),
    },
    changed: Number(changed) === 1,
    granted: Number(granted) === 1,
  };
}

export class RedisStore implements BreakerStore {
  readonly scope = "shared";
  readonly #script;

  constructor(redis: Redis) {
    this.#script = redis.createScript<unknown>(SCRIPT);
  }

  /**
   * Runs the script: ARGV is the operation, now, then its numbers (fail: the threshold; probe: the first and longest
   * wait and the lease's end), then the key's TTL.
   */
  async #run(name: string, op: string, now: number, numbers: [number, number, number] = [0, 0, 0]) {
    const args = [op, String(now), ...numbers.map(String), String(TTL_MS)];
    return parse(await this.#script.exec([BREAKER_KEY_PREFIX + name], args));
  }

  async read(name: string): Promise<BreakerRecord> {
    return (await this.#run(name, "read", Date.now())).record;
  }

  async #change(name: string, op: string, now: number, numbers?: [number, number, number]): Promise<Changed> {
    const { record, changed } = await this.#run(name, op, now, numbers);
    return { record, changed };
  }

  trip(name: string, now: number): Promise<Changed> {
    return this.#change(name, "trip", now);
  }

  fail(name: string, now: number, threshold: number): Promise<Changed> {
    return this.#change(name, "fail", now, [threshold, 0, 0]);
  }

  succeed(name: string): Promise<Changed> {
    return this.#change(name, "succeed", Date.now());
  }

  probe(name: string, now: number, waits: Waits, leaseMs: number): Promise<Changed & { granted: boolean }> {
    return this.#run(name, "probe", now, [waits.firstMs, waits.maxMs, now + leaseMs]);
  }

  close(name: string, now: number): Promise<Changed> {
    return this.#change(name, "close", now);
  }
}
