/**
 * The gateway rows: `hello`'s `GET /` (no I/O) served several ways, to price the gateway (design target:
 * gateway >= 0.8x the same worker on its own socket) and to show where workerd stands against Node:
 * through the gateway as built (hello runs in the gateway's isolate: isolate = false), through the gateway
 * with a service-binding hop (the default for functions), on its own socket, on Node and on Deno.
 *
 * The gateway and own-socket rows come twice, like against like. Traced: as the platform serves them, with
 * their records of each request going to a collector in its own process (the gateway and the function's own worker
 * each make their own). Untraced: no collector and no trace sink, which prices
 * the routing alone; the own-socket row is then the function as bare workerd serves it.
 */
import { rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { BuildResult } from "../build/build.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { CONFIG_FILE } from "../build/serve-config.ts";
import { serializeConfig } from "../build/workerd-config.ts";
import { directSocketConfig, serviceBindingConfig } from "./direct-config.ts";
import type { ServeOptions } from "../build/serve-config.ts";
import type { WorkerdConfig } from "../build/workerd-config.ts";
import type { Comparison, Scenario } from "./scenario.ts";
import { serveOnDeno, serveOnNode, serveWorkerd } from "./servers.ts";

export const HELLO_GATEWAY = "hello via gateway (workerd)";
export const HELLO_GATEWAY_UNTRACED = "hello via gateway, untraced (workerd)";
export const HELLO_BINDING = "hello via gateway, service binding (workerd)";
export const HELLO_OWN_SOCKET = "hello on own socket (workerd, its own records)";
export const HELLO_OWN_SOCKET_UNTRACED = "hello on own socket, untraced (bare workerd)";
export const HELLO_NODE = "hello on Node (@hono/node-server)";
export const HELLO_DENO = "hello on Deno (Deno.serve)";
/** The gateway row again, on one workerd process per core (the `npm start` default). */
export const helloProcesses = (n: number) => `hello via gateway, ${n} workerd processes`;

export interface HelloBenchOptions {
  paths: ProjectPaths;
  release: BuildResult;
  /** Processes for the all-cores row (default: one per core). */
  processes?: number;
  /** Where workerd's and the Node server's own output goes. */
  onLine: (source: string, line: string) => void;
}

/** The hello scenarios and their ratio rows. */
export function helloBench({ paths, release, processes = availableParallelism(), onLine }: HelloBenchOptions): {
  scenarios: Scenario[];
  comparisons: Comparison[];
} {
  const fn = release.manifest.functions.find((f) => f.name === "hello");
  if (!fn) throw new Error(`Release ${release.manifest.id} has no "hello" function; the gateway bench needs functions/hello`);

  const gateway: Scenario = {
    name: HELLO_GATEWAY,
    // The release's own config, started as `npm start` starts it (sockets as fds). No secrets in its env:
    // hello declares none, and no database or scheduler is started.
    start: () => serveWorkerd({ configDir: release.releaseDir, path: fn.route, onLine: (l) => onLine("workerd gateway", l) }),
  };
  const gatewayUntraced: Scenario = {
    name: HELLO_GATEWAY_UNTRACED,
    start: () =>
      serveWorkerd({ configDir: release.releaseDir, path: fn.route, traced: false, onLine: (l) => onLine("workerd gateway", l) }),
  };

  /** A scenario serving a config derived from the release, written outside the immutable release folder. */
  const derived = (
    name: string,
    path: string,
    make: (serve: ServeOptions, releasePath: string) => WorkerdConfig,
    traced = true,
  ): Scenario => ({
    name,
    async start() {
      // Outside the immutable release folder; embed paths point back into it.
      const configDir = join(paths.work, "bench", `direct-${process.pid}-${Date.now()}`);
      await mkdir(configDir, { recursive: true });
      // Also when the process exits without stopping this scenario (a forced quit).
      const removeOnExit = () => rmSync(configDir, { recursive: true, force: true });
      process.once("exit", removeOnExit);
      const removeDir = async () => {
        process.off("exit", removeOnExit);
        await rm(configDir, { recursive: true, force: true });
      };
      try {
        // Addresses are placeholders: the sockets are handed over as fds.
        const serve = { address: "127.0.0.1:8787", internalAddress: "127.0.0.1:8788" };
        const config = make(serve, relative(configDir, release.releaseDir));
        await writeFile(join(configDir, CONFIG_FILE), serializeConfig(config));
        const running = await serveWorkerd({
          configDir,
          path,
          releaseDir: release.releaseDir,
          traced,
          onLine: (l) => onLine(`workerd ${name}`, l),
        });
        return {
          url: running.url,
          async stop() {
            await running.stop();
            await removeDir();
          },
        };
      } catch (err) {
        await removeDir();
        throw err;
      }
    },
  });
  const allCores: Scenario = {
    name: helloProcesses(processes),
    start: () => serveWorkerd({ configDir: release.releaseDir, path: fn.route, processes, onLine: (l) => onLine("workerd gateway", l) }),
  };
  const binding = derived(HELLO_BINDING, fn.route, (serve, releasePath) => serviceBindingConfig(release.manifest, serve, { releasePath }));
  const ownSocket = derived(HELLO_OWN_SOCKET, "/", (serve, releasePath) =>
    directSocketConfig(release.manifest, fn.name, serve, { releasePath }),
  );
  const bare = derived(
    HELLO_OWN_SOCKET_UNTRACED,
    "/",
    (serve, releasePath) => directSocketConfig(release.manifest, fn.name, serve, { releasePath, untraced: true }),
    false,
  );

  const node: Scenario = {
    name: HELLO_NODE,
    start: () =>
      serveOnNode({
        modulePath: join(paths.functions, fn.name, "index.ts"),
        vars: fn.vars,
        path: "/",
        cwd: paths.root,
        onLine: (l) => onLine("node", l),
      }),
  };

  const deno: Scenario = {
    name: HELLO_DENO,
    start: () =>
      serveOnDeno({
        paths,
        modulePath: join(paths.functions, fn.name, "index.ts"),
        vars: fn.vars,
        path: "/",
        onLine: (l) => onLine("deno", l),
      }),
  };

  return {
    scenarios: [gateway, gatewayUntraced, allCores, binding, ownSocket, bare, node, deno],
    comparisons: [
      // Information: "close to linear" (N x) needs a quiet machine with a core to spare for the load generator.
      { name: `${processes} processes / 1 process (gateway)`, a: helloProcesses(processes), b: HELLO_GATEWAY },
      { name: "gateway / own socket, both traced", a: HELLO_GATEWAY, b: HELLO_OWN_SOCKET, target: 0.8 },
      { name: "gateway / own socket, both untraced", a: HELLO_GATEWAY_UNTRACED, b: HELLO_OWN_SOCKET_UNTRACED, target: 0.8 },
      { name: "gateway with a service binding / own socket", a: HELLO_BINDING, b: HELLO_OWN_SOCKET },
      { name: "own socket, untraced / Node", a: HELLO_OWN_SOCKET_UNTRACED, b: HELLO_NODE },
      { name: "gateway / Node", a: HELLO_GATEWAY, b: HELLO_NODE },
      { name: "own socket, untraced / Deno", a: HELLO_OWN_SOCKET_UNTRACED, b: HELLO_DENO },
      { name: "gateway / Deno", a: HELLO_GATEWAY, b: HELLO_DENO },
    ],
  };
}
