/**
 * The outbound rows (issue #19): what the SDK's outbound() helper costs per call, and how fast a call is answered while
 * its breaker is open. One function (outbound-bench/worker.ts) served through the gateway, as `npm start` serves it,
 * calling a loopback HTTP upstream (loopback-target.ts, a process of its own) three ways:
 *   - plain `fetch` to the upstream (the baseline)
 *   - the same GET through `outbound()`, breaker closed: the helper's overhead (the breaker's view, the retry and
 *     timeout policies, an event per try carried to the collector)
 *   - the same route while the breaker is open: the upstream answers 503 until the breaker opens (the bench calls
 *     it until the helper's own 503 comes back), then every call is refused at once, answered from the isolate's copy
 *     of the breaker's state, without a request to the upstream
 * The function declares the Upstash bindings, so the breaker's state lives in Redis: each setup has its own Redis
 * proxy (a process of its own) on the embedded in-memory backend, as `npm start` has without REDIS_URL, so each
 * starts with a closed breaker. The CPU column counts workerd, the collector, the proxy and the upstream.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { ProjectPaths } from "../common/paths.ts";
import { startChildServer } from "./child-server.ts";
import { buildBenchProjectOnce, Teardown } from "./project.ts";
import type { Comparison, RunningScenario, Scenario } from "./scenario.ts";
import { serveWorkerd } from "./servers.ts";

export const OUTBOUND_FETCH = "outbound: plain fetch to a loopback upstream (workerd)";
export const OUTBOUND_CLOSED = "outbound: outbound(), breaker closed (workerd)";
export const OUTBOUND_OPEN = "outbound: outbound(), breaker open, refused 503 (workerd)";

/** The function's name in the bench's project: served at /outbound-bench. */
const FN = "outbound-bench";
const fixture = fileURLToPath(new URL("./outbound-bench/", import.meta.url));
const targetEntry = fileURLToPath(new URL("./loopback-target.ts", import.meta.url));
const proxyEntry = fileURLToPath(new URL("./redis-proxy-server.ts", import.meta.url));
/** How many calls the open row may make before its breaker must be open (5 failures in a row open it). */
const OPENING_CALLS = 20;

export interface OutboundBenchOptions {
  paths: ProjectPaths;
  /** Each line workerd, the proxy and the upstream print. */
  onLine: (source: string, line: string) => void;
  /** The bench's own messages (builds). */
  log: (line: string) => void;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Calls `url` until the helper answers that the breaker is open (its 503 upstream_unavailable), or fails. */
async function openBreaker(url: string): Promise<void> {
  let last = "";
  for (let i = 0; i < OPENING_CALLS; i++) {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    last = `${res.status} ${(await res.text()).slice(0, 200)}`;
    if (res.status === 503 && last.includes("upstream_unavailable")) return;
  }
  throw new Error(`the breaker did not open after ${OPENING_CALLS} calls to a failing upstream; the last answer: ${last}`);
}

/** The outbound scenarios and their ratio rows. */
export function outboundBench({ paths, onLine, log }: OutboundBenchOptions): { scenarios: Scenario[]; comparisons: Comparison[] } {
  const buildOnce = buildBenchProjectOnce(paths, FN, fixture, log);

  /** The upstream (answering 200, or 503 when `failing`), a Redis proxy and workerd serving the function at `route`. */
  function scenario(name: string, route: "/fetch" | "/outbound", failing: boolean): Scenario {
    return {
      name,
      async start(): Promise<RunningScenario> {
        const teardown = new Teardown();
        try {
          const built = await buildOnce();
          const fn = built.manifest.functions.find((f) => f.name === FN);
          if (!fn) throw new Error(`the bench's release ${built.manifest.id} has no "${FN}" function`);
          const upstream = await startChildServer({
            what: "the loopback upstream",
            file: process.execPath,
            args: [targetEntry, failing ? "fail" : "http"],
            cwd: paths.root,
            onLine: (l) => onLine("upstream", l),
          });
          teardown.add(() => upstream.stop());
          const token = randomBytes(24).toString("base64url");
          // REDIS_URL empty: the embedded in-memory backend, whatever this process's environment says.
          const proxy = await startChildServer({
            what: "the Redis proxy",
            file: process.execPath,
            args: [proxyEntry],
            env: { NODE_ENV: "production", REDIS_URL: "", WORKYARD_BENCH_PROXY_TOKEN: token },
            cwd: paths.root,
            onLine: (l) => onLine("redis proxy", l),
          });
          teardown.add(() => proxy.stop());
          // As the supervisor does: workerd sees the internal token and the secrets the function declares, nothing else.
          const bindings: Record<string, string> = {
            UPSTREAM_URL: `http://127.0.0.1:${upstream.port}/`,
            UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${proxy.port}`,
            UPSTASH_REDIS_REST_TOKEN: token,
          };
          const secrets: Record<string, string> = {};
          for (const secret of fn.secrets) {
            const value = bindings[secret];
            if (value === undefined) throw new Error(`the bench's ${FN} function declares a secret it cannot set: ${secret}`);
            secrets[secret] = value;
          }
          const running = await serveWorkerd({
            configDir: built.releaseDir,
            path: `${fn.route}${route}`,
            env: secrets,
            onLine: (l) => onLine("workerd outbound", l),
          });
          teardown.add(() => running.stop());
          if (failing) await openBreaker(running.url);
          return { url: running.url, ...(failing ? { status: 503 } : {}), stop: () => teardown.run() };
        } catch (err) {
          await teardown.run().catch((cleanupErr: unknown) => log(`  cleaning up after a failed start: ${message(cleanupErr)}`));
          throw err;
        }
      },
    };
  }

  return {
    scenarios: [
      scenario(OUTBOUND_FETCH, "/fetch", false),
      scenario(OUTBOUND_CLOSED, "/outbound", false),
      scenario(OUTBOUND_OPEN, "/outbound", true),
    ],
    comparisons: [
      { name: "outbound(), breaker closed / plain fetch", a: OUTBOUND_CLOSED, b: OUTBOUND_FETCH },
      { name: "outbound(), breaker open (refused) / plain fetch", a: OUTBOUND_OPEN, b: OUTBOUND_FETCH },
    ],
  };
}
