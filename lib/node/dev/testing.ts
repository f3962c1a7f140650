/**
 * Testing one function by itself, in-process, on miniflare: no gateway, no supervisor, no workerd process of
 * ours. The function is bundled as `npm run dev` bundles it and gets its merged vars plus whatever bindings
 * the test gives (a database URL, Redis credentials, secrets).
 *
 *   const fn = await functionOnMiniflare("links", { bindings: { DATABASE_URL: url } });
 *   const res = await fn.fetch("/abc");           // the function sees itself at /, as behind the gateway
 *   const run = await fn.scheduled("*\/5 * * * *"); // { outcome: "ok", noRetry: false }
 *   await fn.dispose();
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { WorkerBundler } from "./bundler.ts";
import { discoverFunctions } from "../build/functions.ts";
import { projectPaths } from "../common/paths.ts";
import { varBinding } from "./worker-options.ts";
import type { ProjectPaths } from "../common/paths.ts";

export interface FunctionUnderTest {
  /** Calls the function at `path` (relative to the function: "/" is its root). */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Runs the function's scheduled() handler for `cron`. */
  scheduled(cron: string): Promise<{ outcome: string; noRetry: boolean }>;
  dispose(): Promise<void>;
}

export interface FunctionOnMiniflareOptions {
  paths?: ProjectPaths;
  /** Extra bindings (secrets, URLs); they win over the function's vars. */
  bindings?: Record<string, string>;
}

/** Bundles `name` and runs it on miniflare with its vars and the given bindings. */
export async function functionOnMiniflare(
  name: string,
  { paths = projectPaths(), bindings = {} }: FunctionOnMiniflareOptions = {},
): Promise<FunctionUnderTest> {
  const fn = (await discoverFunctions(paths.functions, paths.sharedConfig)).find((f) => f.name === name);
  if (!fn) throw new Error(`No function "${name}" under ${paths.functions}`);
  const outdir = await mkdtemp(join(tmpdir(), `workyard-${name}-`));
  const bundler = new WorkerBundler(name, {
    root: paths.root,
    entry: fn.entry,
    outdir,
    compatibilityDate: fn.config.compatibility_date,
    compatibilityFlags: fn.config.compatibility_flags,
  });
  try {
    const { script } = await bundler.rebuild();
    const env = Object.fromEntries(Object.entries({ ...fn.config.vars, ...bindings }).map(([k, value]) => [k, varBinding(value)]));
    const mf = new Miniflare({
      workers: [
        {
          config: {
            name,
            compatibilityDate: fn.config.compatibility_date,
            compatibilityFlags: fn.config.compatibility_flags,
            manifest: { mainModule: "index.js", modulesRoot: outdir, modules: { "index.js": { type: "esm", contents: script } } },
            env,
          },
        },
      ],
    });
    await mf.ready;
    return {
      fetch: (path, init) =>
        mf.dispatchFetch(new URL(path, "http://function.test").toString(), {
          redirect: "manual",
          ...(init as object),
        }) as unknown as Promise<Response>,
      scheduled: async (cron) => (await mf.getWorker()).scheduled({ cron, scheduledTime: new Date() }),
      async dispose() {
        await mf.dispose();
        await bundler.dispose();
        await rm(outdir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await bundler.dispose();
    await rm(outdir, { recursive: true, force: true });
    throw err;
  }
}
