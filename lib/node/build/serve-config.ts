/**
 * The workerd config for a release: the gateway on the public socket, one worker per function reached
 * through a service binding, function vars as bindings, secrets from the process environment (never
 * written into a file), and an outbound network that lets functions reach local services (PgBouncer,
 * the Redis proxy) as well as public ones.
 */
import {
  COLLECTOR_TOKEN_VAR,
  COLLECTOR_URL_VAR,
  DB_LISTEN_URL_VAR,
  DB_POOL_MAX_VAR,
  inlineQueueBinding,
  inlineSecretBinding,
  INTERNAL_TOKEN_VAR,
  FUNCTION_CALL_ENTRYPOINT,
  QUEUE_PRODUCER_ENTRYPOINT,
  QUEUE_SERVICE_TOKEN_VAR,
  QUEUE_SERVICE_URL_VAR,
  TRACE_SINK_BINDING,
  TRACE_SINK_ENTRYPOINT,
} from "../../shared/names.ts";
import type { FunctionCallProps, QueueProducerProps, TraceSinkProps } from "../../shared/names.ts";
import {
  declaresRedis,
  REDIS_OBJECT_BINDING,
  REDIS_OBJECT_CLASS,
  REDIS_OBJECT_SWITCH,
  REDIS_OBJECT_TIMEOUT_VAR,
  REDIS_OBJECT_URL_VAR,
} from "../../shared/redis-object.ts";
export { INTERNAL_TOKEN_VAR };
import type { RouteSettings } from "./functions.ts";
import type { AssetsEntry, FunctionEntry, Manifest, QueueProducer } from "../releases/manifest.ts";
import { DEFAULT_ASSETS_CSP, RELEASE_ASSETS_DIR } from "../../shared/assets.ts";
import type { AssetsManifest } from "../../shared/assets.ts";
import { HOST_CLASS } from "./function-entry.ts";
import { Embed, VOID } from "./workerd-config.ts";
import type { Binding, DurableObjectNamespace, Service, WorkerdConfig } from "./workerd-config.ts";

export interface ServeOptions {
  /** Address of the public HTTP socket, e.g. "127.0.0.1:8787". */
  address: string;
  /** Address of the internal socket; keep it on loopback. */
  internalAddress: string;
  /**
   * Address of the probe socket: the internal worker again, but one per process (the supervisor hands each
   * process its own, to check that very process's readiness and to drain it). Default: any free loopback port.
   */
  probeAddress?: string;
  /**
   * Serve HTTPS too: the gateway on an `https` socket with this certificate and key, and the HTTP socket
   * answering only redirects to it. Paths are relative to the config file (workerd reads the files itself, at
   * start, so the key is never copied into a generated file).
   */
  tls?: TlsServeOptions;
}

export interface TlsServeOptions {
  address: string;
  /** The port clients are redirected to (the public one, which may differ from the bound one behind NAT). */
  port: number;
  certificateChain: string;
  privateKey: string;
}

export const PUBLIC_SOCKET = "http";
/** The public HTTPS socket, present when TLS is on. */
export const HTTPS_SOCKET = "https";
/** The platform's own socket: loopback only, token required, never routed from the public one. */
export const INTERNAL_SOCKET = "internal";
/** One process's own view of the internal worker (readiness, drain); loopback only, token required. */
export const PROBE_SOCKET = "probe";
/** What the internal worker's /readyz checks, read from workerd's environment. */
export const READINESS_TARGETS = ["DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"] as const;
/** Where the gateway and the trace sink send traces and the internal worker finds metrics: the supervisor's collector. */
export const COLLECTOR_VARS = [COLLECTOR_URL_VAR, COLLECTOR_TOKEN_VAR] as const;
/**
 * The tail worker of releases built before functions made their own records: it is attached to each of their
 * functions, as they were built to be served. Newer releases have no tail worker (lib/workers/trace/).
 */
export const TAIL_SERVICE = "tail";
const tailOf = (worker: string) => [{ name: TAIL_SERVICE, props: { json: JSON.stringify({ worker }) } }];

/** A function worker's way to hand its own records to the internal worker's trace sink; props name the function. */
function traceSinkBinding(fn: Pick<FunctionEntry, "name">): Binding {
  const props: TraceSinkProps = { worker: fn.name };
  return {
    name: TRACE_SINK_BINDING,
    service: { name: "internal", entrypoint: TRACE_SINK_ENTRYPOINT, props: { json: JSON.stringify(props) } },
  };
}
/** The config file inside a release folder. */
export const CONFIG_FILE = "workerd.capnp";
const OUTBOUND = "outbound";

/** The name of the workerd service that runs a function. */
export const serviceName = (fn: Pick<FunctionEntry, "name">) => `fn-${fn.name}`;

/** The disk service holding a function's stored asset files, and the gateway's binding to it. */
export const assetsService = (fn: Pick<FunctionEntry, "name">) => `assets-${fn.name}`;
const assetsBinding = (fn: Pick<FunctionEntry, "binding">) => `${fn.binding}_ASSETS`;
/** The worker behind a function's own assets binding (env.ASSETS.fetch). */
const assetsWorkerService = (fn: Pick<FunctionEntry, "name">) => `assets-worker-${fn.name}`;

/**
 * What a function's assets are served from: by the gateway, in front of the function's code (every function has
 * code: an entry), or by the assets worker, for the code's own env.ASSETS.fetch (not-found handling for any path).
 */
function assetsManifest(assets: AssetsEntry, hasWorker = !assets.assetsOnly): AssetsManifest {
  return {
    files: assets.files,
    htmlHandling: assets.htmlHandling,
    notFoundHandling: assets.notFoundHandling,
    hasWorker,
    contentSecurityPolicy: DEFAULT_ASSETS_CSP,
  };
}

/** Wrangler's rule: string vars are text bindings, everything else is JSON. */
function varBinding(name: string, value: unknown): Binding {
  return typeof value === "string" ? { name, text: value } : { name, json: JSON.stringify(value) };
}

/** Where the queue producer entrypoint forwards to: the supervisor's queue service. */
export const QUEUE_SERVICE_VARS = [QUEUE_SERVICE_URL_VAR, QUEUE_SERVICE_TOKEN_VAR] as const;

/** A queue binding named `name`: workerd's producer requests go to the internal worker's producer entrypoint. */
function queueBinding(name: string, producer: QueueProducer): Binding {
  const props: QueueProducerProps = { queue: producer.queue, deliveryDelay: producer.deliveryDelay };
  return { name, queue: { name: "internal", entrypoint: QUEUE_PRODUCER_ENTRYPOINT, props: { json: JSON.stringify(props) } } };
}

const producersOf = (fn: FunctionEntry) => fn.queues?.producers ?? [];

/** A service binding to another function: through the gateway (its FunctionCall entrypoint), as a request to it. */
export function functionCallBinding(name: string, fn: string): Binding {
  const props: FunctionCallProps = { fn };
  return { name, service: { name: "gateway", entrypoint: FUNCTION_CALL_ENTRYPOINT, props: { json: JSON.stringify(props) } } };
}

/**
 * The Redis object (lib/workers/redis/object.ts) for a function that declares the Upstash secrets: the internal
 * worker's namespace, and the switch the supervisor sets to "on" only with a real Redis (workerd-env.ts); without
 * it the function's client keeps the HTTP path to the proxy.
 */
const redisObjectBindings = (binding = REDIS_OBJECT_BINDING, switchName = REDIS_OBJECT_SWITCH): Binding[] => [
  { name: binding, durableObjectNamespace: { className: REDIS_OBJECT_CLASS, serviceName: "internal" } },
  { name: switchName, fromEnvironment: REDIS_OBJECT_SWITCH },
];

/** A function's worker; `tail` for a release whose functions are traced by its tail worker. */
function functionService(fn: FunctionEntry, tail: boolean): Service {
  return {
    name: serviceName(fn),
    worker: {
      modules: [{ name: "index.js", esModule: new Embed(fn.module) }],
      compatibilityDate: fn.compatibilityDate,
      compatibilityFlags: fn.compatibilityFlags,
      bindings: [
        ...Object.entries(fn.vars).map(([name, value]) => varBinding(name, value)),
        ...fn.secrets.map((name) => ({ name, fromEnvironment: name })),
        ...producersOf(fn).map((p) => queueBinding(p.binding, p)),
        // An upper bound on the pool the supervisor may set (the embedded database wants one connection).
        ...(fn.dbPool > 0
          ? [
              { name: DB_POOL_MAX_VAR, fromEnvironment: DB_POOL_MAX_VAR },
              { name: DB_LISTEN_URL_VAR, fromEnvironment: DB_LISTEN_URL_VAR },
            ]
          : []),
        ...(fn.assets?.binding ? [{ name: fn.assets.binding, service: { name: assetsWorkerService(fn) } }] : []),
        ...(fn.services ?? []).map((s) => functionCallBinding(s.binding, s.service)),
        ...(declaresRedis(fn.secrets) ? redisObjectBindings() : []),
        // Where its generated entry hands the records it makes of its invocations (lib/workers/trace/function.ts).
        ...(tail ? [] : [traceSinkBinding(fn)]),
      ],
      globalOutbound: { name: OUTBOUND },
      ...(tail ? { tails: tailOf(fn.name) } : {}),
      // A function with a database pool runs in a host object that keeps its connections (function-host.ts);
      // nothing is stored in it, and it is never evicted, so its connections stay open while idle.
      ...(fn.dbPool > 0
        ? {
            durableObjectNamespaces: [{ className: HOST_CLASS, uniqueKey: `workyard-${serviceName(fn)}`, preventEviction: true }],
            durableObjectStorage: { inMemory: VOID },
          }
        : {}),
    },
  };
}

/** The gateway's ROUTES binding: how to reach each function, its deadline and body limit. */
export function gatewayRoutes(functions: (RouteSettings & { assets?: AssetsEntry })[]) {
  return Object.fromEntries(
    functions.map((fn) => [
      fn.name,
      {
        binding: fn.binding,
        timeoutMs: fn.timeoutMs,
        maxBodyBytes: fn.maxBodyBytes,
        ...(fn.isolate ? {} : { inline: true }),
        ...(fn.dbPool > 0 ? { hosted: true } : {}),
        ...(fn.assets ? { assets: { files: assetsBinding(fn), runWorkerFirst: fn.assets.runWorkerFirst } } : {}),
      },
    ]),
  );
}

/** A service binding from a system worker to a function's own worker. */
const toFunction = (fn: FunctionEntry): Binding => ({ name: fn.binding, service: { name: serviceName(fn) } });

/** The gateway's way to a function: its host object when it has a database pool, else its worker. */
const gatewayToFunction = (fn: FunctionEntry): Binding =>
  fn.dbPool > 0 ? { name: fn.binding, durableObjectNamespace: { className: HOST_CLASS, serviceName: serviceName(fn) } } : toFunction(fn);

/** One of the platform's own workers (gateway, internal) from its bundle in the release, with the objects it holds. */
function systemWorker(
  name: string,
  module: Manifest["gateway"],
  bindings: Binding[],
  outbound: boolean,
  objects: DurableObjectNamespace[] = [],
): Service {
  return {
    name,
    worker: {
      modules: [{ name: `${name}.js`, esModule: new Embed(module.module) }],
      compatibilityDate: module.compatibilityDate,
      compatibilityFlags: module.compatibilityFlags,
      bindings,
      ...(outbound ? { globalOutbound: { name: OUTBOUND } } : {}),
      ...(objects.length > 0 ? { durableObjectNamespaces: objects, durableObjectStorage: { inMemory: VOID } } : {}),
    },
  };
}

/** The assets worker of one function: its table and its stored files. */
function assetsWorker(fn: FunctionEntry, assets: AssetsEntry, module: NonNullable<Manifest["assetsWorker"]>): Service {
  return systemWorker(
    assetsWorkerService(fn),
    module,
    [
      { name: "FILES", service: { name: assetsService(fn) } },
      { name: "MANIFEST", json: JSON.stringify(assetsManifest(assets, false)) },
    ],
    false,
  );
}

/** The workerd config that serves `manifest` (paths relative to the release folder). */
export function serveConfig(
  manifest: Manifest,
  { address, internalAddress, probeAddress = "127.0.0.1:0", tls }: ServeOptions,
): WorkerdConfig {
  const routes = gatewayRoutes(manifest.functions);
  const withAssets = manifest.functions.flatMap((fn) => (fn.assets ? [{ fn, assets: fn.assets }] : []));
  const inline = manifest.functions.filter((fn) => !fn.isolate);
  const inlineEnv = Object.fromEntries(
    inline.map((fn) => [
      fn.name,
      {
        vars: fn.vars,
        secrets: fn.secrets,
        ...(producersOf(fn).length > 0 ? { queues: producersOf(fn).map((p) => p.binding) } : {}),
        ...(declaresRedis(fn.secrets) ? { redis: true } : {}),
      },
    ]),
  );
  const redisUsers = manifest.functions.some((fn) => declaresRedis(fn.secrets));
  const gateway = systemWorker(
    "gateway",
    manifest.gateway,
    [
      { name: "ROUTES", json: JSON.stringify(routes) },
      ...(inline.length > 0 ? [{ name: "INLINE_ENV", json: JSON.stringify(inlineEnv) }] : []),
      ...inline.flatMap((fn) => fn.secrets.map((secret) => ({ name: inlineSecretBinding(fn.name, secret), fromEnvironment: secret }))),
      ...inline.flatMap((fn) => producersOf(fn).map((p) => queueBinding(inlineQueueBinding(fn.name, p.binding), p))),
      // The Redis object, handed to the in-isolate functions that declare the Upstash secrets (INLINE_ENV's `redis`).
      ...(inline.some((fn) => declaresRedis(fn.secrets)) ? redisObjectBindings() : []),
      ...manifest.functions.filter((fn) => fn.isolate).map(gatewayToFunction),
      // Static assets are served in the gateway's isolate: each function's table, and its stored files.
      ...(withAssets.length > 0
        ? [
            {
              name: "ASSETS_MANIFESTS",
              json: JSON.stringify(Object.fromEntries(withAssets.map(({ fn, assets }) => [fn.name, assetsManifest(assets)]))),
            },
          ]
        : []),
      ...withAssets.map(({ fn }) => ({ name: assetsBinding(fn), service: { name: assetsService(fn) } })),
      // With TLS on, the gateway answers plain-HTTP requests with a redirect to this port.
      ...(tls ? [{ name: "HTTPS_PORT", json: String(tls.port) }] : []),
      // It sends its records of requests to the collector itself (lib/workers/trace/gateway.ts).
      ...COLLECTOR_VARS.map((name) => ({ name, fromEnvironment: name })),
    ],
    // The collector, and the local services (PgBouncer, the Redis proxy) of the functions in its isolate.
    true,
  );
  const internal = systemWorker(
    "internal",
    manifest.internal,
    [
      { name: INTERNAL_TOKEN_VAR, fromEnvironment: INTERNAL_TOKEN_VAR },
      // For /readyz: the pooler and the proxy, as functions reach them (null when not configured).
      ...READINESS_TARGETS.map((name) => ({ name, fromEnvironment: name })),
      ...COLLECTOR_VARS.map((name) => ({ name, fromEnvironment: name })),
      // Its QueueProducer entrypoint forwards what queue bindings send to the queue service.
      ...QUEUE_SERVICE_VARS.map((name) => ({ name, fromEnvironment: name })),
      { name: "FUNCTIONS", json: JSON.stringify(Object.fromEntries(manifest.functions.map((fn) => [fn.name, fn.binding]))) },
      ...manifest.functions.map(toFunction),
      { name: "GATEWAY_CONTROL", service: { name: "gateway", entrypoint: "control" } },
      // The Redis object's URL (with its password) and command timeout: only in a release with functions that use Redis.
      ...(redisUsers ? [REDIS_OBJECT_URL_VAR, REDIS_OBJECT_TIMEOUT_VAR].map((name) => ({ name, fromEnvironment: name })) : []),
      // For /readyz: Redis through the object, as functions reach it when the switch is on.
      ...(redisUsers ? redisObjectBindings() : []),
    ],
    true,
    // One Redis object per workerd process, never evicted (its connection stays open while idle), nothing stored.
    redisUsers ? [{ className: REDIS_OBJECT_CLASS, uniqueKey: "workyard-redis-object", preventEviction: true }] : [],
  );

  const tail =
    manifest.tail &&
    systemWorker(
      TAIL_SERVICE,
      manifest.tail,
      COLLECTOR_VARS.map((name) => ({ name, fromEnvironment: name })),
      true,
    );
  return {
    services: [
      gateway,
      internal,
      ...(tail ? [tail] : []),
      ...manifest.functions.map((fn) => functionService(fn, tail !== undefined)),
      ...withAssets.map(({ fn }) => ({ name: assetsService(fn), disk: { path: `${RELEASE_ASSETS_DIR}/${fn.name}`, writable: false } })),
      ...withAssets.flatMap(({ fn, assets }) =>
        assets.binding && manifest.assetsWorker ? [assetsWorker(fn, assets, manifest.assetsWorker)] : [],
      ),
      { name: OUTBOUND, network: { allow: ["public", "local"] } },
    ],
    sockets: [
      { name: PUBLIC_SOCKET, address, http: {}, service: { name: "gateway" } },
      { name: INTERNAL_SOCKET, address: internalAddress, http: {}, service: { name: "internal" } },
      { name: PROBE_SOCKET, address: probeAddress, http: {}, service: { name: "internal" } },
      ...(tls
        ? [
            {
              name: HTTPS_SOCKET,
              address: tls.address,
              https: {
                options: {},
                tlsOptions: { keypair: { privateKey: new Embed(tls.privateKey), certificateChain: new Embed(tls.certificateChain) } },
              },
              service: { name: "gateway" },
            },
          ]
        : []),
    ],
  };
}
