/**
 * A workerd config that serves one function of a release straight on the public socket: no gateway, no
 * service-binding hop. The bench compares it with the release's own config to price the gateway. It is the
 * release's config (`serveConfig`) with the public socket pointed at the function's service instead of the
 * gateway, and, untraced, its trace sink binding taken off (its generated entry then records nothing): about the
 * function as bare workerd would serve it (the other services and sockets stay, idle, and `startWorkerd` finds every
 * socket it hands over).
 */
import type { Manifest } from "../releases/manifest.ts";
import { TRACE_SINK_BINDING } from "../../shared/names.ts";
import { PUBLIC_SOCKET, serveConfig, serviceName } from "../build/serve-config.ts";
import type { ServeOptions } from "../build/serve-config.ts";
import { rebaseModules } from "../build/workerd-config.ts";
import type { WorkerdConfig } from "../build/workerd-config.ts";

export interface DirectSocketOptions {
  /**
   * Path of the release folder as seen from the folder the config file is written to (embed paths in
   * capnp are relative to the config file). Default "." (the config sits in the release folder).
   */
  releasePath?: string;
  /** Without the function's own trace records. */
  untraced?: boolean;
}

/**
 * The release's config with every function reached through its service binding, including those built to
 * run in the gateway's isolate (isolate = false): prices the hop that option saves.
 */
export function serviceBindingConfig(
  manifest: Manifest,
  serve: ServeOptions,
  { releasePath = "." }: DirectSocketOptions = {},
): WorkerdConfig {
  const isolated = { ...manifest, functions: manifest.functions.map((f) => ({ ...f, isolate: true })) };
  return rebaseModules(serveConfig(isolated, serve), releasePath);
}

/** The release's config with the public socket bound directly to the function `fnName`'s service. */
export function directSocketConfig(
  manifest: Manifest,
  fnName: string,
  serve: ServeOptions,
  { releasePath = ".", untraced = false }: DirectSocketOptions = {},
): WorkerdConfig {
  const fn = manifest.functions.find((f) => f.name === fnName);
  if (!fn) {
    const names = manifest.functions.map((f) => f.name).join(", ") || "none";
    throw new Error(`Release ${manifest.id} has no function named "${fnName}" (it has: ${names})`);
  }
  const full = serveConfig(manifest, serve);
  if (!full.sockets.some((s) => s.name === PUBLIC_SOCKET)) throw new Error(`The release config has no "${PUBLIC_SOCKET}" socket to rebind`);
  const rebased = rebaseModules(full, releasePath);
  return {
    ...rebased,
    services: rebased.services.map((s) => {
      if (!untraced || s.name !== serviceName(fn) || !("worker" in s)) return s;
      return { ...s, worker: { ...s.worker, bindings: s.worker.bindings?.filter((b) => b.name !== TRACE_SINK_BINDING) } };
    }),
    sockets: full.sockets.map((s) => (s.name === PUBLIC_SOCKET ? { ...s, service: { name: serviceName(fn) } } : s)),
  };
}
