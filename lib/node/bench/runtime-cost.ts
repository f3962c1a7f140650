/**
 * The plain-worker rows: what workerd itself costs, with no framework and no project code. One ES module, on
 * its own socket, answering a request with no I/O, with one outbound `fetch` to a loopback HTTP server, or with
 * one round trip over a `cloudflare:sockets` TCP connection to a loopback echo server (connect, write, read,
 * close). The rows run on the installed workerd and on any other binary given (`npm run bench -- --workerd
 * <path>`), all with the compatibility date of the oldest binary, so that two releases of workerd are priced side
 * by side in one run (the CPU column is workerd's own CPU per request).
 *
 * CPU time on a shared VM swings by a fifth from run to run. With `--instructions`, workerd runs under valgrind's
 * callgrind, which counts the instructions it runs during the measured load (turned on after the warmup with
 * callgrind_control): the same binary and config give the same count to within a fraction of a percent, whatever
 * else the machine is doing, so two binaries can be told apart by a few percent.
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { ProjectPaths } from "../common/paths.ts";
import { RELEASE_WORKERD } from "../releases/runtime.ts";
import { CONFIG_FILE, INTERNAL_SOCKET, PROBE_SOCKET, PUBLIC_SOCKET } from "../build/serve-config.ts";
import { workerdBinaryVersion } from "../ops/toolchain/versions.ts";
import { Embed, serializeConfig } from "../build/workerd-config.ts";
import type { WorkerdConfig } from "../build/workerd-config.ts";
import { startChildServer } from "./child-server.ts";
import type { Comparison, Scenario } from "./scenario.ts";
import { serveWorkerd } from "./servers.ts";

const run = promisify(execFile);
const targetEntry = fileURLToPath(new URL("./loopback-target.ts", import.meta.url));

export type PlainMode = "no I/O" | "one fetch" | "one socket round trip";
const MODES: PlainMode[] = ["no I/O", "one fetch", "one socket round trip"];

const PLAIN_WORKER = `import { connect } from "cloudflare:sockets";
const ping = new TextEncoder().encode("ping");
export default {
  async fetch(request, env) {
    if (env.MODE === "fetch") {
      const res = await fetch(env.TARGET);
      return new Response(await res.text());
    }
    if (env.MODE === "socket") {
      const socket = connect(env.ECHO);
      const writer = socket.writable.getWriter();
      await writer.write(ping);
      const { value } = await socket.readable.getReader().read();
      await socket.close();
      return new Response(value);
    }
    return new Response("hello");
  },
};
`;
const HEALTH_WORKER = `export default { fetch: () => new Response("ok") };\n`;

export interface WorkerdBinary {
  path: string;
  /** "2026-11-23", from `workerd --version`. */
  date: string;
}

/** A workerd binary and the date it reports (its release, and the newest compatibility date it supports). */
export async function describeBinary(path: string): Promise<WorkerdBinary> {
  const says = await workerdBinaryVersion(path);
  if (says === undefined) throw new Error(`${path} does not run as workerd (\`${path} --version\` failed)`);
  const date = /(\d{4}-\d{2}-\d{2})/.exec(says)?.[1];
  if (!date) throw new Error(`${path} --version said "${says}", not a workerd with a date`);
  return { path, date };
}

export const plainRow = (mode: PlainMode, binary: WorkerdBinary) => `plain worker, ${mode} (workerd ${binary.date})`;

/** The config: the worker on the public socket, a health worker on the internal and probe sockets, loopback outbound. */
function plainConfig(mode: PlainMode, compatibilityDate: string, target: string, echo: string): WorkerdConfig {
  const health = { name: "health", worker: { modules: [{ name: "health.js", esModule: new Embed("health.js") }], compatibilityDate } };
  return {
    services: [
      {
        name: "plain",
        worker: {
          modules: [{ name: "plain.js", esModule: new Embed("plain.js") }],
          compatibilityDate,
          bindings: [
            { name: "MODE", text: mode === "one fetch" ? "fetch" : mode === "one socket round trip" ? "socket" : "none" },
            { name: "TARGET", text: target },
            { name: "ECHO", text: echo },
          ],
          globalOutbound: { name: "loopback" },
        },
      },
      health,
      { name: "loopback", network: { allow: ["local"] } },
    ],
    sockets: [
      { name: PUBLIC_SOCKET, address: "127.0.0.1:0", service: { name: "plain" }, http: {} },
      { name: INTERNAL_SOCKET, address: "127.0.0.1:0", service: { name: "health" }, http: {} },
      { name: PROBE_SOCKET, address: "127.0.0.1:0", service: { name: "health" }, http: {} },
    ],
  };
}

export interface RuntimeCostOptions {
  paths: ProjectPaths;
  binaries: WorkerdBinary[];
  /** Run workerd under callgrind and count its instructions per request. */
  instructions?: boolean;
  onLine: (source: string, line: string) => void;
}

/** Fails with the fix when valgrind is not installed. */
export async function checkValgrind(): Promise<void> {
  await run("valgrind", ["--version"], { timeout: 10_000 }).catch(() => {
    throw new Error("--instructions runs workerd under valgrind, which is not installed: sudo apt-get install -y valgrind");
  });
}

/**
 * A stand-in for the workerd binary that runs it under callgrind with instrumentation off, so that the start and
 * the warmup are not counted; `callgrind_control -i on` starts the count.
 */
const callgrindWrapper = (binary: string, outFile: string) =>
  `#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file --callgrind-out-file=${JSON.stringify(outFile)} ${JSON.stringify(binary)} "$@"\n`;

/** The instructions in callgrind's dump in `dir` (its `totals:` line, the last it writes), once it is written. */
async function dumpedInstructions(dir: string): Promise<number> {
  for (let waited = 0; waited < 60_000; waited += 250) {
    const dumps = (await readdir(dir)).filter((f) => f.startsWith("callgrind.out."));
    const texts = await Promise.all(dumps.map((f) => readFile(join(dir, f), "utf8")));
    const totals = texts.map((t) => /^totals: (\d+)/m.exec(t)?.[1]);
    if (dumps.length > 0 && totals.every((t) => t !== undefined)) return totals.reduce((n, t) => n + Number(t), 0);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`callgrind wrote no complete dump into ${dir} within a minute`);
}

/** The plain-worker scenarios for each binary, and a ratio row per mode for each binary against the first. */
export function runtimeCostBench({ paths, binaries, instructions = false, onLine }: RuntimeCostOptions): {
  scenarios: Scenario[];
  comparisons: Comparison[];
} {
  const compatibilityDate = binaries.map((b) => b.date).sort()[0] ?? "2026-01-01";
  const scenarios = binaries.flatMap((binary) =>
    MODES.map((mode): Scenario => ({
      name: plainRow(mode, binary),
      async start() {
        const targets = await Promise.all(
          (["http", "echo"] as const).map((kind) =>
            startChildServer({
              what: `the ${kind} target`,
              file: process.execPath,
              args: [targetEntry, kind],
              cwd: paths.root,
              onLine: (l) => onLine(`${kind} target`, l),
            }),
          ),
        );
        const [http, echo] = targets;
        const dir = join(paths.work, "bench", `plain-${process.pid}-${Date.now()}`);
        const stopTargets = () => Promise.all(targets.map((t) => t.stop()));
        try {
          await mkdir(join(dir, "runtime"), { recursive: true });
          // The folder serves like a release that keeps its own workerd (release-runtime.ts): this binary, or
          // this binary under callgrind.
          if (instructions) {
            await writeFile(join(dir, RELEASE_WORKERD), callgrindWrapper(binary.path, join(dir, "callgrind.out")));
            await chmod(join(dir, RELEASE_WORKERD), 0o755);
          } else {
            await symlink(binary.path, join(dir, RELEASE_WORKERD));
          }
          await writeFile(join(dir, "plain.js"), PLAIN_WORKER);
          await writeFile(join(dir, "health.js"), HEALTH_WORKER);
          const config = plainConfig(mode, compatibilityDate, `http://127.0.0.1:${http?.port ?? 0}/`, `127.0.0.1:${echo?.port ?? 0}`);
          await writeFile(join(dir, CONFIG_FILE), serializeConfig(config));
          const running = await serveWorkerd({
            configDir: dir,
            path: "/",
            traced: false,
            readyTimeoutMs: instructions ? 180_000 : 15_000,
            onLine: (l) => onLine(`workerd ${binary.date}`, l),
          });
          const pid = String(running.pids[0] ?? 0);
          const control = (arg: string) => run("callgrind_control", [arg, pid], { timeout: 60_000 });
          return {
            url: running.url,
            ...(instructions
              ? {
                  measured: {
                    start: async () => void (await control("--instr=on")),
                    async stop(responses: number) {
                      await control("--instr=off");
                      await control("--dump");
                      return { instructionsPerRequest: responses > 0 ? (await dumpedInstructions(dir)) / responses : 0 };
                    },
                  },
                }
              : {}),
            async stop() {
              await running.stop();
              await stopTargets();
              await rm(dir, { recursive: true, force: true });
            },
          };
        } catch (err) {
          await stopTargets();
          await rm(dir, { recursive: true, force: true });
          throw err;
        }
      },
    })),
  );
  // Under callgrind throughput means nothing: the instructions table compares the binaries.
  const [first, ...others] = binaries;
  const comparisons =
    first && !instructions
      ? others.flatMap((other) =>
          MODES.map((mode): Comparison => ({
            name: `plain worker, ${mode}: workerd ${first.date} / ${other.date}`,
            a: plainRow(mode, first),
            b: plainRow(mode, other),
          })),
        )
      : [];
  return { scenarios, comparisons };
}
