/**
 * The workerd config for a release: the gateway on the public socket, one worker per function reached
 * through a service binding, function vars as bindings, secrets from the process environment (never
 * written into a file), and an outbound network that lets functions reach local services (PgBouncer,
 * the Redis proxy) as well as public ones.
 */
import { inlineSecretBinding } from "../worker/inline-names.ts";
import type { RouteSettings } from "./functions.ts";
import type { FunctionEntry, Manifest } from "./manifest.ts";
import { Embed } from "./workerd-config.ts";
import type { Binding, Service, WorkerdConfig } from "./workerd-config.ts";

export interface ServeOptions {
  /** Address of the public HTTP socket, e.g. "127.0.0.1:8787". */
  address: string;
  /** Address of the internal socket; keep it on loopback. */
  internalAddress: string;
}

export const PUBLIC_SOCKET = "http";
/** The platform's own socket: loopback only, token required, never routed from the public one. */
export const INTERNAL_SOCKET = "internal";
/** The environment variable workerd reads the internal token from. */
export const INTERNAL_TOKEN_VAR = "WORKYARD_INTERNAL_TOKEN";
/** What the internal worker's /readyz checks, read from workerd's environment. */
export const READINESS_TARGETS = ["DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"] as const;
/** The config file inside a release folder. */
export const CONFIG_FILE = "workerd.capnp";
const OUTBOUND = "outbound";

/** The name of the workerd service that runs a function. */
export const serviceName = (fn: Pick<FunctionEntry, "name">) => `fn-${fn.name}`;

/** Wrangler's rule: string vars are text bindings, everything else is JSON. */
function varBinding(name: string, value: unknown): Binding {
  return typeof value === "string" ? { name, text: value } : { name, json: JSON.stringify(value) };
}

function functionService(fn: FunctionEntry): Service {
  return {
    name: serviceName(fn),
    worker: {
      modules: [{ name: "index.js", esModule: new Embed(fn.module) }],
      compatibilityDate: fn.compatibilityDate,
      compatibilityFlags: fn.compatibilityFlags,
      bindings: [
        ...Object.entries(fn.vars).map(([name, value]) => varBinding(name, value)),
        ...fn.secrets.map((name) => ({ name, fromEnvironment: name })),
      ],
      globalOutbound: { name: OUTBOUND },
    },
  };
}

/** The gateway's ROUTES binding: how to reach each function, its deadline and body limit. */
export function gatewayRoutes(functions: RouteSettings[]) {
  return Object.fromEntries(
    functions.map((fn) => [
      fn.name,
      { binding: fn.binding, timeoutMs: fn.timeoutMs, maxBodyBytes: fn.maxBodyBytes, ...(fn.isolate ? {} : { inline: true }) },
    ]),
  );
}

/** A service binding from a system worker to a function's own worker. */
const toFunction = (fn: FunctionEntry): Binding => ({ name: fn.binding, service: { name: serviceName(fn) } });

/** One of the platform's own workers (gateway, internal) from its bundle in the release. */
function systemWorker(name: string, module: Manifest["gateway"], bindings: Binding[], outbound: boolean): Service {
  return {
    name,
    worker: {
      modules: [{ name: `${name}.js`, esModule: new Embed(module.module) }],
      compatibilityDate: module.compatibilityDate,
      compatibilityFlags: module.compatibilityFlags,
      bindings,
      ...(outbound ? { globalOutbound: { name: OUTBOUND } } : {}),
    },
  };
}

/** The workerd config that serves `manifest` (paths relative to the release folder). */
export function serveConfig(manifest: Manifest, { address, internalAddress }: ServeOptions): WorkerdConfig {
  const routes = gatewayRoutes(manifest.functions);
  const inline = manifest.functions.filter((fn) => !fn.isolate);
  const inlineEnv = Object.fromEntries(inline.map((fn) => [fn.name, { vars: fn.vars, secrets: fn.secrets }]));
  const gateway = systemWorker(
    "gateway",
    manifest.gateway,
    [
      { name: "ROUTES", json: JSON.stringify(routes) },
      ...(inline.length > 0 ? [{ name: "INLINE_ENV", json: JSON.stringify(inlineEnv) }] : []),
      ...inline.flatMap((fn) => fn.secrets.map((secret) => ({ name: inlineSecretBinding(fn.name, secret), fromEnvironment: secret }))),
      ...manifest.functions.filter((fn) => fn.isolate).map(toFunction),
    ],
    // Functions in the gateway's isolate reach local services (PgBouncer, the Redis proxy) from here.
    inline.length > 0,
  );
  const internal = systemWorker(
    "internal",
    manifest.internal,
    [
      { name: INTERNAL_TOKEN_VAR, fromEnvironment: INTERNAL_TOKEN_VAR },
      // For /readyz: the pooler and the proxy, as functions reach them (null when not configured).
      ...READINESS_TARGETS.map((name) => ({ name, fromEnvironment: name })),
      { name: "FUNCTIONS", json: JSON.stringify(Object.fromEntries(manifest.functions.map((fn) => [fn.name, fn.binding]))) },
      ...manifest.functions.map(toFunction),
    ],
    true,
  );
  return {
    services: [
      gateway,
      internal,
      ...manifest.functions.map(functionService),
      { name: OUTBOUND, network: { allow: ["public", "local"] } },
    ],
    sockets: [
      { name: PUBLIC_SOCKET, address, http: {}, service: { name: "gateway" } },
      { name: INTERNAL_SOCKET, address: internalAddress, http: {}, service: { name: "internal" } },
    ],
  };
}
