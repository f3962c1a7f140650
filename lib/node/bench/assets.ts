/**
 * The static-asset row (issue #22): one fingerprinted script (16 KiB) served by workerd through the gateway, as
 * `npm start` serves a function's [assets], against Caddy's `file_server` on the same file (what a user would put in
 * front of a front end instead). Both answer it as it is (the load sends no Accept-Encoding) with an ETag; the design's
 * target is workerd >= 0.8x Caddy. Like against like: workerd as npm start serves it (each request recorded in the
 * access log by the collector) against Caddy with its access log on, and workerd untraced against Caddy without one.
 * Skipped, with the reason, when Caddy is not installed.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { build } from "../build/build.ts";
import { projectPaths } from "../common/paths.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { freePort } from "../runtime/listen-socket.ts";
import { linkBenchProject } from "./project.ts";
import type { Comparison, RunningScenario, Scenario } from "./scenario.ts";
import { serveWorkerd } from "./servers.ts";
import { findOnPath } from "../common/find-on-path.ts";

export const ASSET_WORKERD = "fingerprinted asset via gateway (workerd)";
export const ASSET_WORKERD_UNTRACED = "fingerprinted asset via gateway, untraced (workerd)";
export const ASSET_CADDY = "fingerprinted asset from Caddy file_server";
export const ASSET_CADDY_LOGGED = "fingerprinted asset from Caddy file_server --access-log";

const FN = "static";
const CADDY_HINT = "Caddy is not installed: `apt-get install -y caddy` (Debian), or set CADDY_BIN to its path";

/** CADDY_BIN, else `caddy` on the PATH or in the system folders. */
function findCaddy(env: NodeJS.ProcessEnv): string | undefined {
  if (env.CADDY_BIN) return existsSync(env.CADDY_BIN) ? env.CADDY_BIN : undefined;
  return findOnPath("caddy", env);
}

/** A script-like file of 16 KiB, the same on every run, under a bundler's fingerprinted name. */
function script(): { name: string; body: string } {
  let body = "// workyard bench: a fingerprinted script\n";
  for (let i = 0; body.length < 16 * 1024; i++) body += `export const value${i} = ${JSON.stringify(`text ${i} `.repeat(4))};\n`;
  const hash = createHash("sha256").update(body).digest("base64url").slice(0, 8);
  return { name: `app-${hash}.js`, body };
}

/** The bench's project: one function with the script in its [assets] folder, built with the real build. */
async function buildAssetsProject(paths: ProjectPaths) {
  const root = join(paths.work, "bench", "assets-project");
  const fnDir = join(root, "functions", FN);
  const file = script();
  await rm(join(fnDir, "public"), { recursive: true, force: true });
  await mkdir(join(fnDir, "public", "assets"), { recursive: true });
  await writeFile(join(fnDir, "public", "assets", file.name), file.body);
  await writeFile(
    join(fnDir, "index.ts"),
    '// Written by the bench.\nimport { createApp } from "#workyard/app";\n\nexport default createApp();\n',
  );
  await writeFile(join(fnDir, "wrangler.toml"), '# Written by the bench.\n[assets]\ndirectory = "./public"\n');
  await linkBenchProject(paths, root);
  return { built: await build(projectPaths(root)), publicDir: join(fnDir, "public"), path: `/assets/${file.name}` };
}

export function assetsBench({
  paths,
  log,
  onLine,
  env = process.env,
}: {
  paths: ProjectPaths;
  log: (line: string) => void;
  onLine: (source: string, line: string) => void;
  env?: NodeJS.ProcessEnv;
}): { scenarios: Scenario[]; comparisons: Comparison[] } {
  const comparisons: Comparison[] = [
    { name: "asset: workerd / Caddy, both logging each request", a: ASSET_WORKERD, b: ASSET_CADDY_LOGGED, target: 0.8 },
    { name: "asset: workerd untraced / Caddy, neither logging", a: ASSET_WORKERD_UNTRACED, b: ASSET_CADDY, target: 0.8 },
  ];
  let project: ReturnType<typeof buildAssetsProject> | undefined;
  const once = () => (project ??= buildAssetsProject(paths));
  const workerd = (name: string, traced: boolean): Scenario => ({
    name,
    async start() {
      const { built, path } = await once();
      return serveWorkerd({ configDir: built.releaseDir, path: `/${FN}${path}`, traced, onLine: (l) => onLine("workerd assets", l) });
    },
  });
  const onWorkerd = [workerd(ASSET_WORKERD, true), workerd(ASSET_WORKERD_UNTRACED, false)];
  const caddyBin = findCaddy(env);
  if (!caddyBin) {
    log(`asset rows against Caddy skipped: ${CADDY_HINT}`);
    return { scenarios: onWorkerd, comparisons };
  }
  const caddy = (name: string, accessLog: boolean): Scenario => ({
    name,
    async start(): Promise<RunningScenario> {
      const { publicDir, path } = await once();
      const port = await freePort();
      const args = ["file-server", "--root", publicDir, "--listen", `127.0.0.1:${port}`, ...(accessLog ? ["--access-log"] : [])];
      const child = execa(caddyBin, args, {
        // With its access log on, Caddy writes a line per request to stderr: read and dropped here (as a log file
        // would take it), not printed.
        stdio: ["ignore", "pipe", "pipe"],
        reject: false,
        buffer: false,
        cleanup: true,
        env: { ...env, HOME: join(paths.work, "bench") },
      });
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (chunk: string) => {
        if (!accessLog) chunk.split("\n").forEach((l) => l.trim() && onLine("caddy", l));
      });
      const stop = async () => {
        if (child.nodeChildProcess.exitCode !== null) return;
        child.kill("SIGTERM");
        await child;
      };
      const url = `http://127.0.0.1:${port}${path}`;
      for (const deadline = Date.now() + 10_000; ; await sleep(100)) {
        const res = await fetch(url).catch(() => undefined);
        if (res?.status === 200) {
          await res.text();
          break;
        }
        if (child.nodeChildProcess.exitCode !== null || Date.now() > deadline) {
          await stop();
          throw new Error(`Caddy did not serve ${url}`);
        }
      }
      return { url, stop };
    },
  });
  return { scenarios: [...onWorkerd, caddy(ASSET_CADDY, false), caddy(ASSET_CADDY_LOGGED, true)], comparisons };
}
