/**
 * A throwaway copy of the project for a test: the real functions plus test-only fixtures, the real lib/,
 * wrangler.toml, package.json and migrations. It lives under .workyard/ so that bundling resolves packages from the
 * repository's node_modules, and is removed by `dispose`.
 */
import { cp, mkdir, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { projectPaths } from "../../lib/node/common/paths.ts";
import type { ProjectPaths } from "../../lib/node/common/paths.ts";

const repo = projectPaths();

export interface TestProject {
  paths: ProjectPaths;
  dispose(): Promise<void>;
}

/** Copies the functions (and the named fixtures from tests/fixtures/functions) into a fresh project. */
export async function createTestProject({ fixtures = [] as string[], realFunctions = true } = {}): Promise<TestProject> {
  const root = join(repo.work, "test-projects", `${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  await mkdir(join(root, "functions"), { recursive: true });
  if (realFunctions) await cp(repo.functions, join(root, "functions"), { recursive: true });
  for (const name of fixtures) {
    await cp(join(repo.root, "tests/fixtures/functions", name), join(root, "functions", name), { recursive: true });
  }
  await cp(repo.sharedConfig, join(root, "wrangler.toml"));
  // Its own package.json, as a real project has: functions import the SDK through its "imports" map
  // (#workyard/app -> ./lib/sdk/app.ts), which resolves against the nearest package.json.
  await cp(join(repo.root, "package.json"), join(root, "package.json"));
  await symlink(join(repo.root, "lib"), join(root, "lib"));
  await symlink(repo.migrations, join(root, "migrations"));
  return {
    paths: projectPaths(root),
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}
