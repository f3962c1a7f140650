/**
 * A throwaway copy of the project for a test: the real functions plus test-only fixtures, the real lib/,
 * wrangler.toml, package.json and migrations. It lives under .workyard/ so that bundling resolves packages from the
 * repository's node_modules, and is removed by `dispose`. Its bundle cache is the run's (tests/setup/backends.ts): a
 * bundle is taken from there only when every file that went into it has the same content in this copy, so each file
 * that starts a stack does not run Wrangler again for the same sources.
 */
import { cp, mkdir, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { inject } from "vitest";
import { projectPaths } from "../../lib/node/common/paths.ts";
import type { ProjectPaths } from "../../lib/node/common/paths.ts";

const repo = projectPaths();

export interface TestProject {
  paths: ProjectPaths;
  dispose(): Promise<void>;
}

/**
 * The API-surface functions: large bundles (GraphiQL's inline page, Scalar) that cost every workerd start about 1.5 s
 * to load, so a project has them only when its test is about them (`apiSurface: true`).
 */
export const API_SURFACE_FUNCTIONS = ["docs", "graphql"];

/** The front end (functions/app): its Vite build and React bundle are in a project only when `frontEnd` asks. */
export const FRONT_END_FUNCTIONS = ["app"];

/**
 * Copies the functions (and the named fixtures from tests/fixtures/functions) into a fresh project: the real ones but
 * the API-surface functions unless `apiSurface` and the front end unless `frontEnd`. `sharedBundles` false gives it a bundle cache of its own (the build
 * test checks what the cache holds).
 */
export async function createTestProject({
  fixtures = [] as string[],
  realFunctions = true,
  apiSurface = false,
  frontEnd = false,
  sharedBundles = true,
} = {}): Promise<TestProject> {
  const root = join(repo.work, "test-projects", `${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  await mkdir(join(root, "functions"), { recursive: true });
  if (realFunctions) {
    const left = [...(apiSurface ? [] : API_SURFACE_FUNCTIONS), ...(frontEnd ? [] : FRONT_END_FUNCTIONS)].map((name) =>
      join(repo.functions, name),
    );
    // A front end's build output is made again in the copy by its [build] command.
    const built = FRONT_END_FUNCTIONS.map((name) => join(repo.functions, name, "dist"));
    await cp(repo.functions, join(root, "functions"), {
      recursive: true,
      filter: (source) => !left.includes(source) && !built.includes(source),
    });
  }
  for (const name of fixtures) {
    await cp(join(repo.root, "tests/fixtures/functions", name), join(root, "functions", name), { recursive: true });
  }
  await cp(repo.sharedConfig, join(root, "wrangler.toml"));
  // Its own package.json, as a real project has: functions import the SDK through its "imports" map
  // (#workyard/app -> ./lib/sdk/app.ts), which resolves against the nearest package.json.
  await cp(join(repo.root, "package.json"), join(root, "package.json"));
  await symlink(join(repo.root, "lib"), join(root, "lib"));
  await symlink(repo.migrations, join(root, "migrations"));
  const paths = projectPaths(root);
  const shared = sharedBundles ? inject("bundleCache") : undefined;
  if (shared) {
    await mkdir(paths.work, { recursive: true });
    await symlink(shared, paths.bundleCache);
  }
  return {
    paths,
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}
