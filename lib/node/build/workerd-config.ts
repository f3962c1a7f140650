/**
 * The workerd config (the parts of workerd.capnp this project uses) as typed data, and the one serializer
 * that writes it as Cap'n Proto text. Schema: node_modules/workerd/workerd.capnp.
 */
import { posix } from "node:path";

/** A file embedded into the config (`embed "path"`), relative to the config file's folder. */
export class Embed {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }
}

/** Cap'n Proto's `void`, for union members that carry no value (e.g. `durableObjectStorage = (inMemory = void)`). */
export class Void {
  readonly capnp = "void";
}
export const VOID = new Void();

/** A ServiceDesignator: the service's name, optionally an entrypoint and props handed to it. */
export interface ServiceDesignator {
  name: string;
  entrypoint?: string;
  props?: { json: string };
}

export type Module = { name: string } & ({ esModule: Embed } | { text: Embed } | { json: Embed } | { wasm: Embed });

export type Binding = { name: string } & (
  | { text: string }
  | { json: string }
  | { fromEnvironment: string }
  | { service: ServiceDesignator }
  | { queue: ServiceDesignator }
  | { hyperdrive: { designator: ServiceDesignator; database: string; user: string; password: string; scheme: string } }
  | { durableObjectNamespace: { className: string; serviceName?: string } }
);

/** A Durable Object class a worker exports; `preventEviction` keeps an object (and its sockets) alive while idle. */
export interface DurableObjectNamespace {
  className: string;
  uniqueKey: string;
  preventEviction?: boolean;
}

export interface Worker {
  modules: Module[];
  compatibilityDate: string;
  compatibilityFlags?: string[];
  bindings?: Binding[];
  globalOutbound?: ServiceDesignator;
  tails?: ServiceDesignator[];
  durableObjectNamespaces?: DurableObjectNamespace[];
  /** Where Durable Objects keep storage; `inMemory` (a Void) is enough for objects that store nothing. */
  durableObjectStorage?: { inMemory: Void };
}

export interface Network {
  allow?: string[];
  deny?: string[];
}

export interface ExternalServer {
  address: string;
  http?: Record<string, never>;
  tcp?: Record<string, never>;
}

/** A folder served over HTTP (GET, HEAD, ranges); a relative path is from workerd's working folder (the release). */
export interface DiskDirectory {
  path: string;
  writable?: boolean;
}

export type Service = { name: string } & (
  { worker: Worker } | { network: Network } | { external: ExternalServer } | { disk: DiskDirectory }
);

export interface HttpOptions {
  forwardedProtoHeader?: string;
}

export interface TlsOptions {
  keypair: { privateKey: Embed; certificateChain: Embed };
}

export type Socket = { name: string; address: string; service: ServiceDesignator } & (
  { http: HttpOptions } | { https: { options: HttpOptions; tlsOptions: TlsOptions } }
);

export interface WorkerdConfig {
  services: Service[];
  sockets: Socket[];
  logging?: { structuredLogging?: boolean };
}

function rebaseModule(module: Module, releasePath: string): Module {
  const moved = (e: Embed) => new Embed(posix.join(releasePath, e.path));
  if ("esModule" in module) return { name: module.name, esModule: moved(module.esModule) };
  if ("text" in module) return { name: module.name, text: moved(module.text) };
  if ("json" in module) return { name: module.name, json: moved(module.json) };
  return { name: module.name, wasm: moved(module.wasm) };
}

/**
 * The config with every worker module's embed path prefixed by `releasePath`: for a config file written outside
 * the release folder (embed paths in capnp are relative to the config file, and absolute ones are not allowed).
 * Disk services' paths (a function's stored assets) are relative to workerd's working directory, which is the
 * release folder wherever the config is: they stay as they are.
 */
export function rebaseModules(config: WorkerdConfig, releasePath: string): WorkerdConfig {
  return {
    ...config,
    services: config.services.map((s) =>
      "worker" in s ? { ...s, worker: { ...s.worker, modules: s.worker.modules.map((m) => rebaseModule(m, releasePath)) } } : s,
    ),
  };
}

type Value = string | number | boolean | Embed | Void | Value[] | { [key: string]: Value | undefined };

/** A Cap'n Proto text string literal. */
function quote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function write(value: Value, indent: string): string {
  if (value instanceof Embed) return `embed ${quote(value.path)}`;
  if (value instanceof Void) return "void";
  if (typeof value === "string") return quote(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`workerd config: ${value} is not a number Cap'n Proto can hold`);
    return String(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => `${inner}${write(v, inner)}`).join(",\n")}\n${indent}]`;
  }
  const fields = Object.entries(value).filter((e): e is [string, Value] => e[1] !== undefined);
  if (fields.length === 0) return "()";
  return `(\n${fields.map(([k, v]) => `${inner}${k} = ${write(v, inner)}`).join(",\n")}\n${indent})`;
}

/** The config as a workerd.capnp text file; serve it with `workerd serve <file> config`. */
export function serializeConfig(config: WorkerdConfig): string {
  return `# Generated by workyard from the release manifest. Do not edit: run npm run build.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = ${write(config as unknown as Value, "")};
`;
}
