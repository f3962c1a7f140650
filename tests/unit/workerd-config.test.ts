import { describe, expect, it } from "vitest";
import type { Manifest } from "../../lib/node/releases/manifest.ts";
import { serveConfig } from "../../lib/node/build/serve-config.ts";
import { Embed, rebaseModules, serializeConfig } from "../../lib/node/build/workerd-config.ts";

const hash = "0".repeat(64);
const manifest: Manifest = {
  version: 1,
  id: "abc",
  createdAt: "2026-01-01T00:00:00.000Z",
  sourceHash: hash,
  gateway: { module: "gateway/gateway.js", sha256: hash, bytes: 1, compatibilityDate: "2026-01-01", compatibilityFlags: [] },
  internal: {
    module: "internal/internal.js",
    sha256: hash,
    bytes: 1,
    compatibilityDate: "2026-01-01",
    compatibilityFlags: ["service_binding_extra_handlers"],
  },
  functions: [
    {
      name: "my-fn",
      route: "/my-fn",
      binding: "FN_MY_FN",
      module: "functions/my-fn/index.js",
      sha256: hash,
      bytes: 1,
      compatibilityDate: "2026-02-02",
      compatibilityFlags: ["nodejs_compat"],
      vars: { NAME: 'say "hi"\n', LIMITS: { max: 3 } },
      secrets: ["API_KEY"],
      crons: ["*/5 * * * *"],
      cron: { catchUp: false, overlap: false, timeoutMs: 60_000 },
      timeoutMs: 1000,
      maxBodyBytes: 2048,
      isolate: true,
      dbPool: 0,
    },
  ],
};

describe("serializeConfig", () => {
  it("writes Cap'n Proto text: structs, lists, escaped strings, embeds", () => {
    const text = serializeConfig({
      services: [
        {
          name: "w",
          worker: { modules: [{ name: "m.js", esModule: new Embed("a/m.js") }], compatibilityDate: "2026-01-01", compatibilityFlags: [] },
        },
      ],
      sockets: [{ name: "http", address: "127.0.0.1:1", http: {}, service: { name: "w" } }],
    });
    expect(text).toContain('using Workerd = import "/workerd/workerd.capnp";');
    expect(text).toContain('esModule = embed "a/m.js"');
    expect(text).toContain("compatibilityFlags = []");
    expect(text).toContain("http = ()");
    expect(text).toMatch(/const config :Workerd\.Config = \(/);
  });

  it("escapes quotes, backslashes and control characters and keeps unicode", () => {
    const text = serializeConfig({ services: [{ name: 'a"b\\c\n\x01✓', network: {} }], sockets: [] });
    expect(text).toContain('name = "a\\"b\\\\c\\n\\x01✓"');
  });
});

describe("serveConfig with a function in the gateway's isolate", () => {
  const fn = manifest.functions[0];
  if (!fn) throw new Error("fixture");
  const inlined: Manifest = { ...manifest, functions: [{ ...fn, isolate: false }] };
  const config = serveConfig(inlined, { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" });
  const gateway = config.services.find((s) => s.name === "gateway");

  it("routes it in-isolate, with its vars and secrets held by the gateway", () => {
    expect(gateway && "worker" in gateway && gateway.worker.bindings).toEqual([
      { name: "ROUTES", json: JSON.stringify({ "my-fn": { binding: "FN_MY_FN", timeoutMs: 1000, maxBodyBytes: 2048, inline: true } }) },
      { name: "INLINE_ENV", json: JSON.stringify({ "my-fn": { vars: fn.vars, secrets: ["API_KEY"] } }) },
      { name: "SECRET__my_fn__API_KEY", fromEnvironment: "API_KEY" },
      { name: "WORKYARD_COLLECTOR_URL", fromEnvironment: "WORKYARD_COLLECTOR_URL" },
      { name: "WORKYARD_COLLECTOR_TOKEN", fromEnvironment: "WORKYARD_COLLECTOR_TOKEN" },
    ]);
    expect(gateway && "worker" in gateway && gateway.worker.globalOutbound).toEqual({ name: "outbound" });
  });

  it("keeps its own worker for scheduled runs", () => {
    expect(config.services.map((s) => s.name)).toContain("fn-my-fn");
  });
});

describe("serveConfig with [[services]]", () => {
  const [fn] = manifest.functions;
  const config = serveConfig(
    { ...manifest, functions: [{ ...(fn as (typeof manifest.functions)[number]), services: [{ binding: "AUTH", service: "auth" }] }] },
    { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" },
  );

  it("binds each to the gateway's FunctionCall entrypoint, with the function called as props", () => {
    const worker = config.services.find((s) => s.name === "fn-my-fn");
    const bindings = worker && "worker" in worker ? (worker.worker.bindings ?? []) : [];
    expect(bindings.find((b) => b.name === "AUTH")).toEqual({
      name: "AUTH",
      service: { name: "gateway", entrypoint: "FunctionCall", props: { json: '{"fn":"auth"}' } },
    });
  });
});

describe("serveConfig", () => {
  const config = serveConfig(manifest, { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" });
  const text = serializeConfig(config);

  it("routes through the gateway with one service binding per function", () => {
    const gateway = config.services.find((s) => s.name === "gateway");
    expect(gateway && "worker" in gateway && gateway.worker.bindings).toEqual([
      { name: "ROUTES", json: JSON.stringify({ "my-fn": { binding: "FN_MY_FN", timeoutMs: 1000, maxBodyBytes: 2048 } }) },
      { name: "FN_MY_FN", service: { name: "fn-my-fn" } },
      { name: "WORKYARD_COLLECTOR_URL", fromEnvironment: "WORKYARD_COLLECTOR_URL" },
      { name: "WORKYARD_COLLECTOR_TOKEN", fromEnvironment: "WORKYARD_COLLECTOR_TOKEN" },
    ]);
    expect(config.sockets[0]).toEqual({ name: "http", address: "127.0.0.1:8787", http: {}, service: { name: "gateway" } });
  });

  it("serves the internal worker on its own socket, with the token from the environment and every function bound", () => {
    expect(config.sockets[1]).toEqual({ name: "internal", address: "127.0.0.1:8788", http: {}, service: { name: "internal" } });
    const internal = config.services.find((s) => s.name === "internal");
    expect(internal && "worker" in internal && internal.worker).toMatchObject({
      compatibilityFlags: ["service_binding_extra_handlers"],
      bindings: [
        { name: "WORKYARD_INTERNAL_TOKEN", fromEnvironment: "WORKYARD_INTERNAL_TOKEN" },
        { name: "DATABASE_URL", fromEnvironment: "DATABASE_URL" },
        { name: "UPSTASH_REDIS_REST_URL", fromEnvironment: "UPSTASH_REDIS_REST_URL" },
        { name: "UPSTASH_REDIS_REST_TOKEN", fromEnvironment: "UPSTASH_REDIS_REST_TOKEN" },
        { name: "WORKYARD_COLLECTOR_URL", fromEnvironment: "WORKYARD_COLLECTOR_URL" },
        { name: "WORKYARD_COLLECTOR_TOKEN", fromEnvironment: "WORKYARD_COLLECTOR_TOKEN" },
        // Its QueueProducer entrypoint forwards queue sends to the supervisor's queue service.
        { name: "WORKYARD_QUEUE_URL", fromEnvironment: "WORKYARD_QUEUE_URL" },
        { name: "WORKYARD_QUEUE_TOKEN", fromEnvironment: "WORKYARD_QUEUE_TOKEN" },
        { name: "FUNCTIONS", json: '{"my-fn":"FN_MY_FN"}' },
        { name: "FN_MY_FN", service: { name: "fn-my-fn" } },
        // Drains this process's gateway before it is replaced (lib/workers/drain.ts).
        { name: "GATEWAY_CONTROL", service: { name: "gateway", entrypoint: "control" } },
      ],
    });
    // Each process's own probe socket serves the same internal worker (the supervisor hands it over as an fd).
    expect(config.sockets[2]).toEqual({ name: "probe", address: "127.0.0.1:0", http: {}, service: { name: "internal" } });
    // The gateway has no way to reach it: only function bindings.
    const gateway = config.services.find((s) => s.name === "gateway");
    expect(JSON.stringify(gateway)).not.toContain("internal");
  });

  it("binds vars as text or JSON, secrets from the environment, and the outbound network", () => {
    const fn = config.services.find((s) => s.name === "fn-my-fn");
    expect(fn && "worker" in fn && fn.worker).toMatchObject({
      compatibilityDate: "2026-02-02",
      compatibilityFlags: ["nodejs_compat"],
      bindings: [
        { name: "NAME", text: 'say "hi"\n' },
        { name: "LIMITS", json: '{"max":3}' },
        { name: "API_KEY", fromEnvironment: "API_KEY" },
        { name: "WORKYARD_TRACE_SINK", service: { name: "internal", entrypoint: "TraceSink", props: { json: '{"worker":"my-fn"}' } } },
      ],
      globalOutbound: { name: "outbound" },
    });
    expect(config.services.find((s) => s.name === "outbound")).toEqual({ name: "outbound", network: { allow: ["public", "local"] } });
    expect(text).toContain('fromEnvironment = "API_KEY"');
  });

  const workerOf = (c: typeof config, name: string) => {
    const s = c.services.find((x) => x.name === name);
    return s && "worker" in s ? s.worker : undefined;
  };

  it("hands every function a binding to the internal worker's trace sink naming it through props; no tail worker", () => {
    expect(workerOf(config, "fn-my-fn")?.tails).toBeUndefined();
    expect(workerOf(config, "fn-my-fn")?.bindings).toContainEqual({
      name: "WORKYARD_TRACE_SINK",
      service: { name: "internal", entrypoint: "TraceSink", props: { json: '{"worker":"my-fn"}' } },
    });
    expect(config.services.some((s) => s.name === "tail")).toBe(false);
    for (const system of ["gateway", "internal"]) expect(workerOf(config, system)?.tails).toBeUndefined();
    expect(text).toContain('json = "{\\"worker\\":\\"my-fn\\"}"');
  });

  it("serves a release built with a tail worker as it was built: the tail attached to each function, no trace sink", () => {
    const tail = { module: "tail/tail.js", sha256: hash, bytes: 1, compatibilityDate: "2026-01-01", compatibilityFlags: [] };
    const older = serveConfig({ ...manifest, tail }, { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" });
    expect(workerOf(older, "fn-my-fn")?.tails).toEqual([{ name: "tail", props: { json: '{"worker":"my-fn"}' } }]);
    expect(workerOf(older, "fn-my-fn")?.bindings?.some((b) => b.name === "WORKYARD_TRACE_SINK")).toBe(false);
    expect(workerOf(older, "tail")).toBeDefined();
    expect(workerOf(older, "gateway")?.tails).toBeUndefined();
  });
});

describe("queue bindings", () => {
  const producer = { binding: "JOBS", queue: "jobs", deliveryDelay: 30 };
  const fn = manifest.functions[0];
  const withQueues = (isolate: boolean): Manifest => ({
    ...manifest,
    functions: fn ? [{ ...fn, isolate, queues: { producers: [producer], consumers: [] } }] : [],
  });
  const bindingsOf = (config: ReturnType<typeof serveConfig>, service: string) => {
    const s = config.services.find((x) => x.name === service);
    return s && "worker" in s ? (s.worker.bindings ?? []) : [];
  };
  const expected = {
    queue: { name: "internal", entrypoint: "QueueProducer", props: { json: JSON.stringify({ queue: "jobs", deliveryDelay: 30 }) } },
  };

  it("binds a producer to the internal worker's QueueProducer entrypoint, its props naming the queue", () => {
    const config = serveConfig(withQueues(true), { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" });
    expect(bindingsOf(config, "fn-my-fn")).toContainEqual({ name: "JOBS", ...expected });
    // The gateway holds no queue binding of a function in its own isolate.
    expect(bindingsOf(config, "gateway").some((b) => "queue" in b)).toBe(false);
  });

  it("gives a function in the gateway's isolate its queue through the gateway, named per function, and says so in INLINE_ENV", () => {
    const config = serveConfig(withQueues(false), { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" });
    const gateway = bindingsOf(config, "gateway");
    expect(gateway).toContainEqual({ name: "QUEUE__my_fn__JOBS", ...expected });
    const inline = gateway.find((b) => b.name === "INLINE_ENV");
    expect(inline && "json" in inline ? JSON.parse(inline.json) : undefined).toMatchObject({ "my-fn": { queues: ["JOBS"] } });
    // Its own worker (which runs its crons and queue()) has it too.
    expect(bindingsOf(config, "fn-my-fn")).toContainEqual({ name: "JOBS", ...expected });
  });

  it("writes the binding as Cap'n Proto text workerd reads", () => {
    const text = serializeConfig(serveConfig(withQueues(true), { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" }));
    expect(text).toMatch(
      /name = "JOBS",\n\s+queue = \(\n\s+name = "internal",\n\s+entrypoint = "QueueProducer",\n\s+props = \(\n\s+json = /,
    );
  });
});

describe("rebaseModules", () => {
  it("points module embeds back into the release from a config written elsewhere, and leaves disk folders to the working directory", () => {
    const rebased = rebaseModules(
      {
        services: [
          {
            name: "w",
            worker: { modules: [{ name: "index.js", esModule: new Embed("functions/w/index.js") }], compatibilityDate: "2026-01-01" },
          },
          { name: "assets-w", disk: { path: "assets/w", writable: false } },
        ],
        sockets: [],
      },
      "../releases/abc",
    );
    expect(rebased.services).toEqual([
      {
        name: "w",
        worker: {
          modules: [{ name: "index.js", esModule: new Embed("../releases/abc/functions/w/index.js") }],
          compatibilityDate: "2026-01-01",
        },
      },
      { name: "assets-w", disk: { path: "assets/w", writable: false } },
    ]);
  });
});

describe("serveConfig with functions that use Redis", () => {
  const [fn] = manifest.functions;
  if (!fn) throw new Error("fixture");
  const upstash = ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"];
  const config = serveConfig(
    {
      ...manifest,
      functions: [
        { ...fn, secrets: upstash },
        { ...fn, name: "inline", binding: "FN_INLINE", secrets: upstash, isolate: false },
        { ...fn, name: "plain", binding: "FN_PLAIN", secrets: ["API_KEY"] },
      ],
    },
    { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" },
  );
  const worker = (name: string) => {
    const service = config.services.find((s) => s.name === name);
    if (!service || !("worker" in service)) throw new Error(`no worker ${name}`);
    return service.worker;
  };
  const objectBindings = [
    { name: "WORKYARD_REDIS", durableObjectNamespace: { className: "RedisObject", serviceName: "internal" } },
    { name: "WORKYARD_REDIS_OBJECT", fromEnvironment: "WORKYARD_REDIS_OBJECT" },
  ];

  it("gives the Redis object's binding and switch only to the functions that declare the Upstash secrets", () => {
    expect(worker("fn-my-fn").bindings).toEqual(expect.arrayContaining(objectBindings));
    expect(worker("fn-plain").bindings?.map((b) => b.name)).not.toContain("WORKYARD_REDIS");
    expect(worker("gateway").bindings).toEqual(expect.arrayContaining(objectBindings));
    const inlineEnv = worker("gateway").bindings?.find((b) => b.name === "INLINE_ENV");
    expect(JSON.parse((inlineEnv as { json: string }).json)).toMatchObject({ inline: { redis: true } });
  });

  it("holds the object in the internal worker, never evicted, with the URL and timeout from workerd's environment", () => {
    const internal = worker("internal");
    expect(internal.durableObjectNamespaces).toEqual([
      { className: "RedisObject", uniqueKey: "workyard-redis-object", preventEviction: true },
    ]);
    expect(internal.durableObjectStorage).toBeDefined();
    expect(internal.bindings).toEqual(
      expect.arrayContaining([
        { name: "WORKYARD_REDIS_URL", fromEnvironment: "WORKYARD_REDIS_URL" },
        { name: "WORKYARD_REDIS_TIMEOUT_MS", fromEnvironment: "WORKYARD_REDIS_TIMEOUT_MS" },
      ]),
    );
  });

  it("leaves it all out of a release whose functions do not use Redis", () => {
    const plain = serveConfig(manifest, { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" });
    const text = serializeConfig(plain);
    expect(text).not.toContain("RedisObject");
    expect(text).not.toContain("WORKYARD_REDIS");
  });
});
