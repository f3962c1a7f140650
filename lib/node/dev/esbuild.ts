/**
 * esbuild settings for `npm run dev`, equivalent to what Wrangler uses when it bundles a worker (its
 * `bundleWorker`: ESM, target es2024, conditions workerd/worker/browser, esbuild's default browser
 * platform and main fields, keepNames, `.js` read as JSX, `cloudflare:*` external, `node:*` external under
 * nodejs_compat), with minify off and an inline source map. Uses the esbuild that Wrangler itself depends
 * on, so dev and `npm run build` bundle with the same version.
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type * as EsbuildApi from "esbuild";
import type { BuildOptions } from "esbuild";
import { hasNodejsCompat } from "../build/nodejs-compat.ts";
import { runtimeModules } from "../build/runtime-modules.ts";

type Esbuild = typeof EsbuildApi;

let loaded: Promise<Esbuild> | undefined;

/** Wrangler's own esbuild (node_modules/wrangler/node_modules/esbuild when it differs from the top-level one). */
export function loadEsbuild(): Promise<Esbuild> {
  const fromWrangler = createRequire(createRequire(import.meta.url).resolve("wrangler/package.json"));
  loaded ??= import(pathToFileURL(fromWrangler.resolve("esbuild")).href) as Promise<Esbuild>;
  return loaded;
}

export interface WorkerBuildSettings {
  /** The project root: paths in messages and in the metafile are relative to it. */
  root: string;
  /** The entry file, or a generated entry module (resolved from the root). */
  entry: string | { contents: string; sourcefile: string };
  /** Where the bundle would be written (nothing is written; source map paths are relative to it). */
  outdir: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
}

/** esbuild options for one worker, as Wrangler would bundle it for `wrangler dev`. */
export function workerBuildOptions({ root, entry, outdir, compatibilityDate, compatibilityFlags }: WorkerBuildSettings): BuildOptions {
  const nodeEnv = JSON.stringify("development");
  return {
    ...(typeof entry === "string"
      ? { entryPoints: { index: entry } }
      : { stdin: { contents: entry.contents, sourcefile: entry.sourcefile, resolveDir: root, loader: "ts" } }),
    absWorkingDir: root,
    outdir,
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    target: "es2024",
    supported: { "import-source": true },
    // Wrangler's conditions, and "workyard-dev": what only npm run dev serves (GraphiQL's page: #workyard/graphiql).
    conditions: ["workerd", "worker", "browser", "workyard-dev"],
    // platform left at esbuild's default ("browser", main fields browser, module, main), as Wrangler does.
    keepNames: true,
    minify: false,
    // Inline, as miniflare reads it for stack traces; without the sources' text, which would double the
    // script workerd loads on every reload (the files are on disk for anyone who needs them).
    sourcemap: "inline",
    sourcesContent: false,
    loader: { ".js": "jsx", ".mjs": "jsx", ".cjs": "jsx" },
    define: {
      "process.env.NODE_ENV": nodeEnv,
      "global.process.env.NODE_ENV": nodeEnv,
      "globalThis.process.env.NODE_ENV": nodeEnv,
    },
    plugins: [runtimeModules(hasNodejsCompat(compatibilityDate, compatibilityFlags))],
    logLevel: "silent",
  };
}
