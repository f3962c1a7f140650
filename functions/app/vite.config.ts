// The front end's build, run by `npm run build` through this function's [build] command: dist/ is what its
// [assets] serve (fingerprinted names, so they are cached for a year), and dist/index.html is the page template the
// function renders into.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  // The function's prefix: the gateway serves functions/app at /app.
  base: "/app/",
  plugins: [react()],
  // Kept with the project's other caches, not beside the sources (which the build watches and hashes).
  cacheDir: "../../node_modules/.vite/app",
  logLevel: "warn",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
});
