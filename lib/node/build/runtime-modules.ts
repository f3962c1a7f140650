/**
 * The esbuild plugin both of our own bundlers use (`npm run dev`'s, and the build's for the platform's workers) so
 * that modules the runtime provides stay imports, as Wrangler leaves them: `cloudflare:*` and `workerd:*` always,
 * Node.js built-ins under nodejs_compat, bare or not (a bare `buffer` becomes `node:buffer`: postgres.js 4 imports
 * `os`, `fs` and `stream` by their bare names). Without Node.js built-ins such an import is an error that says
 * which flag to add (or which date gives it).
 */
import { builtinModules } from "node:module";
import type { Plugin } from "esbuild";

const NODE_BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith("_")));

/** The plugin, for a worker that has (or has not) Node.js built-ins (nodejs-compat.ts). */
export function runtimeModules(nodejsCompat: boolean): Plugin {
  return {
    name: "workyard-runtime-modules",
    setup(build) {
      build.onResolve({ filter: /^(cloudflare|workerd):/ }, (args) => ({ path: args.path, external: true }));
      build.onResolve({ filter: /^node:|^[a-z_]+(\/[a-z_]+)?$/ }, (args) => {
        const bare = args.path.replace(/^node:/, "");
        if (!args.path.startsWith("node:") && !NODE_BUILTINS.has(bare)) return undefined; // an npm package
        if (nodejsCompat) return { path: `node:${bare}`, external: true };
        return {
          errors: [
            {
              text: `"${args.path}" is a Node.js built-in: add "nodejs_compat" to compatibility_flags in wrangler.toml, or use a compatibility_date from 2026-08-04 on`,
            },
          ],
        };
      });
    },
  };
}
