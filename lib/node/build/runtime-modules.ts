/**
 * The esbuild plugin both of our own bundlers use (`npm run dev`'s, and the build's for the platform's workers) so
 * that modules the runtime provides stay imports, as Wrangler leaves them: `cloudflare:*` and `workerd:*` always,
 * Node.js built-ins under nodejs_compat, bare or not (a bare `buffer` becomes `node:buffer`: postgres.js 4 imports
 * `os`, `fs` and `stream` by their bare names). Without Node.js built-ins such an import is an error that says
 * which flag to add (or which date gives it).
 *
 * A CommonJS `require()` of a built-in (redis-parser's `require('buffer')`) cannot stay a require: an ES module has
 * none, and esbuild's stand-in throws "Dynamic require ... is not supported" in workerd. It becomes a small module
 * that imports the built-in and hands its default export to the require, as Wrangler's own bundler does.
 */
import { builtinModules } from "node:module";
import type { Plugin } from "esbuild";

const NODE_BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith("_")));
const REQUIRED_BUILTIN = "workyard-required-builtin";

/** The plugin, for a worker that has (or has not) Node.js built-ins (nodejs-compat.ts). */
export function runtimeModules(nodejsCompat: boolean): Plugin {
  return {
    name: "workyard-runtime-modules",
    setup(build) {
      build.onResolve({ filter: /^(cloudflare|workerd):/ }, (args) => ({ path: args.path, external: true }));
      build.onResolve({ filter: /^node:|^[a-z_]+(\/[a-z_]+)?$/ }, (args) => {
        const bare = args.path.replace(/^node:/, "");
        if (!args.path.startsWith("node:") && !NODE_BUILTINS.has(bare)) return undefined; // an npm package
        if (nodejsCompat && args.kind === "require-call") return { path: `node:${bare}`, namespace: REQUIRED_BUILTIN };
        if (nodejsCompat) return { path: `node:${bare}`, external: true };
        return {
          errors: [
            {
              text: `"${args.path}" is a Node.js built-in: add "nodejs_compat" to compatibility_flags in wrangler.toml, or use a compatibility_date from 2026-08-04 on`,
            },
          ],
        };
      });
      build.onLoad({ filter: /.*/, namespace: REQUIRED_BUILTIN }, (args) => ({
        contents: `import builtin from ${JSON.stringify(args.path)};\nmodule.exports = builtin;\n`,
        loader: "js",
      }));
    },
  };
}
