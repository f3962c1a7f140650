// The front end's build, run by `npm run build` through this function's [build] command: dist/ is what its
// [assets] serve (fingerprinted names, so they are cached for a year), and dist/index.html is the page template the
// function renders into.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  // Relative addresses: the function sets the page's <base href> to where it is served ("/app/" behind the gateway,
  // "/" on Cloudflare), so the same build works under any prefix.
  base: "./",
  plugins: [react()],
  // Kept with the project's other caches, not beside the sources (which the build watches and hashes).
  cacheDir: "../../node_modules/.vite/app",
  logLevel: "warn",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
});
