/**
 * Pieces the database and Redis benches share: a small project of the bench's own holding one function,
 * built with the project's real build(), and an ordered teardown.
 */
import { copyFile, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { build } from "../build/build.ts";
import type { BuildResult } from "../build/build.ts";
import { projectPaths } from "../common/paths.ts";
import type { ProjectPaths } from "../common/paths.ts";

/** The same function code served a second way: another folder with its own wrangler.toml. */
export interface BenchVariant {
  name: string;
  wranglerToml: string;
}

/**
 * Builds .workyard/bench/<fn>-project: functions/<fn> (an index.ts re-exporting `<fixtureDir>/worker.ts`, and
 * `<fixtureDir>/wrangler.toml`), the shared wrangler.toml, and links to lib, migrations and the lockfile. Kept
 * between runs so that build() reuses its release while the sources are unchanged.
 */
export async function buildBenchProject(
  paths: ProjectPaths,
  fn: string,
  fixtureDir: string,
  variants: BenchVariant[] = [],
): Promise<BuildResult> {
  const root = join(paths.work, "bench", `${fn}-project`);
  for (const variant of [{ name: fn }, ...variants]) {
    const fnDir = join(root, "functions", variant.name);
    await mkdir(fnDir, { recursive: true });
    await writeFile(
      join(fnDir, "index.ts"),
      `// Written by the bench: the ${variant.name} function.\nexport { default } from "../../lib/node/bench/${fn}/worker.ts";\n`,
    );
    if ("wranglerToml" in variant) await writeFile(join(fnDir, "wrangler.toml"), variant.wranglerToml);
    else await copyFile(join(fixtureDir, "wrangler.toml"), join(fnDir, "wrangler.toml"));
  }
  await linkBenchProject(paths, root);
  return build(projectPaths(root));
}

/**
 * Gives a bench project at `root` what it takes from the real one: copies of the shared wrangler.toml and of
 * package.json (its `imports` map the SDK for the build and for Deno), and links to lib, migrations and the
 * lockfile (left as they are when already there).
 */
export async function linkBenchProject(paths: ProjectPaths, root: string): Promise<void> {
  await copyFile(paths.sharedConfig, join(root, "wrangler.toml"));
  await copyFile(join(paths.root, "package.json"), join(root, "package.json"));
  const links: [string, string][] = [
    [join(paths.root, "lib"), join(root, "lib")],
    [paths.migrations, join(root, "migrations")],
    [join(paths.root, "package-lock.json"), join(root, "package-lock.json")],
  ];
  for (const [target, path] of links) {
    await symlink(target, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
  }
}

/** Cleanups run in reverse order, every one of them even when one fails; the first failure is thrown. */
export class Teardown {
  private steps: (() => Promise<void>)[] = [];
  add(step: () => Promise<void>) {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    let first: unknown;
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch (err) {
        first ??= err;
      }
    }
    this.steps = [];
    if (first !== undefined) throw first;
  }
}

/** buildBenchProject once per bench run, on first use, logging whether the release was built or reused. */
export function buildBenchProjectOnce(
  paths: ProjectPaths,
  fn: string,
  fixtureDir: string,
  log: (line: string) => void,
  variants: BenchVariant[] = [],
): () => Promise<BuildResult> {
  let release: Promise<BuildResult> | undefined;
  return () =>
    (release ??= buildBenchProject(paths, fn, fixtureDir, variants).then((r) => {
      log(
        `  ${r.reused ? "sources unchanged, using" : "built"} release ${r.manifest.id} of the bench's ${fn} function (${Math.round(r.ms)} ms)`,
      );
      return r;
    }));
}
