import { describe, expect, it } from "vitest";
import type { Manifest } from "../../lib/node/releases/manifest.ts";
import type { WorkerdEnvOptions } from "../../lib/node/runtime/workerd-env.ts";
import { workerdEnvironment } from "../../lib/node/runtime/workerd-env.ts";

const hash = "0".repeat(64);
const fn = (name: string, secrets: string[]): Manifest["functions"][number] => ({
  name,
  route: `/${name}`,
  binding: `FN_${name.toUpperCase()}`,
  module: `functions/${name}/index.js`,
  sha256: hash,
  bytes: 1,
  compatibilityDate: "2026-02-02",
  compatibilityFlags: [],
  vars: {},
  secrets,
  crons: [],
  cron: { catchUp: false, overlap: false, timeoutMs: 60_000 },
  timeoutMs: 1000,
  maxBodyBytes: 2048,
  isolate: true,
  dbPool: 0,
});
const module = { module: "m.js", sha256: hash, bytes: 1, compatibilityDate: "2026-01-01", compatibilityFlags: [] };
const manifestWith = (functions: Manifest["functions"]): Manifest => ({
  version: 1,
  id: "abc",
  createdAt: "2026-01-01T00:00:00.000Z",
  sourceHash: hash,
  gateway: module,
  internal: module,
  functions,
});

const REDIS_URL = "redis://user:secret@127.0.0.1:6379/2";
function environment(manifest: Manifest, env: NodeJS.ProcessEnv) {
  const options = {
    manifest,
    env,
    internalToken: "t",
    database: { functionUrl: "postgres://db", listenUrl: "postgres://listen", backend: { kind: "postgres" } },
    redis: { bindings: { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1", UPSTASH_REDIS_REST_TOKEN: "tok" } },
    collector: { url: "http://c", token: "c" },
    queues: { url: "http://q", token: "q" },
  } as unknown as WorkerdEnvOptions;
  return workerdEnvironment(options).env;
}

describe("workerdEnvironment and the Redis object", () => {
  const users = manifestWith([fn("a", ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"]), fn("b", [])]);

  it("hands workerd the Redis URL and the switch when a function declares the Upstash secrets and REDIS_URL is set", () => {
    const env = environment(users, { REDIS_URL, WORKYARD_REDIS_TIMEOUT_MS: "800" });
    expect(env).toMatchObject({ WORKYARD_REDIS_OBJECT: "on", WORKYARD_REDIS_URL: REDIS_URL, WORKYARD_REDIS_TIMEOUT_MS: "800" });
  });

  it("keeps the URL out of workerd without a real Redis, without a function that uses it, or with the object off", () => {
    for (const env of [
      environment(users, {}),
      environment(manifestWith([fn("b", ["API_KEY"])]), { REDIS_URL, API_KEY: "k" }),
      environment(users, { REDIS_URL, WORKYARD_REDIS_OBJECT: "off" }),
    ]) {
      expect(env.WORKYARD_REDIS_URL).toBeUndefined();
      expect(env.WORKYARD_REDIS_OBJECT).toBeUndefined();
      expect(JSON.stringify(env)).not.toContain("secret@");
    }
  });

  it("refuses a switch that is neither on nor off, and a timeout that is not a number of milliseconds", () => {
    expect(() => environment(users, { REDIS_URL, WORKYARD_REDIS_OBJECT: "yes" })).toThrow(/must be "on" or "off"/);
    expect(() => environment(users, { REDIS_URL, WORKYARD_REDIS_TIMEOUT_MS: "5s" })).toThrow(/whole number of milliseconds/);
  });
});
