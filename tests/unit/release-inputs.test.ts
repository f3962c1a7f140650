/**
 * The release id comes from an explicit list of what goes into a release (lib/node/build/release-inputs.ts): editing a
 * file on the list changes it, editing or moving a file that never ships does not, and every module the build
 * imports is on the list.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { build as esbuild } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectPaths } from "../../lib/node/common/paths.ts";
import type { ProjectPaths } from "../../lib/node/common/paths.ts";
import { BUILD_CODE, releaseInputs, sourceHash, WORKER_CODE } from "../../lib/node/build/release-inputs.ts";

describe("the release id", () => {
  let root: string;
  let paths: ProjectPaths;
  const write = async (file: string, text: string) => {
    await mkdir(dirname(join(root, file)), { recursive: true });
    await writeFile(join(root, file), text);
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "workyard-release-inputs-"));
    paths = projectPaths(root);
    await write("functions/hello/index.ts", "export default {};\n");
    await write("lib/sdk/app.ts", "export const app = 1;\n");
    await write("lib/workers/gateway.ts", "export const gateway = 1;\n");
    await write("lib/node/build/build.ts", "export const build = 1;\n");
    await write("lib/node/data/backup.ts", "export const backup = 1;\n");
    await write("lib/node/dev/server.ts", "export const dev = 1;\n");
    await write("docs/notes.md", "# notes\n");
    await write("wrangler.toml", 'compatibility_date = "2026-11-23"\n');
    await write("package-lock.json", "{}\n");
    await write("patches/postgres+4.2.0.patch", "diff --git a/x b/x\n");
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("changes when a file of a function's asset folder changes, also a folder outside functions/", async () => {
    await write("functions/hello/wrangler.toml", '[assets]\ndirectory = "../../web/dist"\n');
    await write("web/dist/index.html", "<p>one</p>\n");
    const before = await sourceHash(paths);
    await write("web/dist/index.html", "<p>two</p>\n");
    expect(await sourceHash(paths)).not.toBe(before);
    await rm(join(root, "web"), { recursive: true });
    await rm(join(root, "functions/hello/wrangler.toml"));
  });

  it("outside a git checkout, counts a [build]'s assets folder as sources (it cannot tell it was built)", async () => {
    await write("functions/hello/wrangler.toml", '[build]\ncommand = "vite build"\n\n[assets]\ndirectory = "./dist"\n');
    await write("functions/hello/src/page.tsx", "export const page = 1;\n");
    const before = await sourceHash(paths);
    await write("functions/hello/dist/assets/index-abc.js", "built();\n");
    const built = await sourceHash(paths);
    expect(built).not.toBe(before);
    await write("functions/hello/src/page.tsx", "export const page = 2;\n");
    expect(await sourceHash(paths)).not.toBe(built);
    await rm(join(root, "functions/hello/dist"), { recursive: true });
    await rm(join(root, "functions/hello/src"), { recursive: true });
    await rm(join(root, "functions/hello/wrangler.toml"));
  });

  it("in a git checkout, keeps an assets folder git tracks as an input, also with [build] (a build of the code alone)", async () => {
    const repo = await mkdtemp(join(tmpdir(), "workyard-release-inputs-git-"));
    try {
      const put = async (file: string, text: string) => {
        await mkdir(dirname(join(repo, file)), { recursive: true });
        await writeFile(join(repo, file), text);
      };
      spawnSync("git", ["init", "-q"], { cwd: repo });
      await put(".gitignore", "dist/\n");
      await put("wrangler.toml", 'compatibility_date = "2026-11-23"\n');
      await put("functions/site/index.ts", "export default {};\n");
      await put("functions/site/wrangler.toml", '[build]\ncommand = "make"\n\n[assets]\ndirectory = "./public"\n');
      await put("functions/site/public/index.html", "<p>one</p>\n");
      const repoPaths = projectPaths(repo);
      const before = await sourceHash(repoPaths);
      await put("functions/site/public/index.html", "<p>two</p>\n");
      expect(await sourceHash(repoPaths)).not.toBe(before);
      // A folder git ignores is the build's output (and stays out when watch_dir holds it too).
      await put("functions/site/wrangler.toml", '[build]\ncommand = "make"\nwatch_dir = "."\n\n[assets]\ndirectory = "./dist"\n');
      await put("functions/site/dist/index.html", "<p>one</p>\n");
      const built = await sourceHash(repoPaths);
      await put("functions/site/dist/index.html", "<p>two</p>\n");
      expect(await sourceHash(repoPaths)).toBe(built);
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });

  it("does not change when a file outside the release is edited or moved", async () => {
    const before = await sourceHash(paths);
    await write("lib/node/data/backup.ts", "export const backup = 2;\n");
    await write("docs/notes.md", "# other notes\n");
    await rename(join(root, "lib/node/dev/server.ts"), join(root, "lib/node/dev-server.ts"));
    await mkdir(join(root, "lib/node/ops"), { recursive: true });
    await rename(join(root, "lib/node/data/backup.ts"), join(root, "lib/node/ops/backup.ts"));
    expect(await sourceHash(paths)).toBe(before);
  });

  it.each([
    ["a function", "functions/hello/index.ts"],
    ["the SDK", "lib/sdk/app.ts"],
    ["a platform worker", "lib/workers/gateway.ts"],
    ["the build", "lib/node/build/build.ts"],
    ["the shared Wrangler config", "wrangler.toml"],
    ["the locked dependencies", "package-lock.json"],
    ["a patch patch-package applies", "patches/postgres+4.2.0.patch"],
  ])("changes when %s is edited", async (_what, file) => {
    const before = await sourceHash(paths);
    await writeFile(join(root, file), `${await readFile(join(root, file), "utf8")}// edited\n`);
    expect(await sourceHash(paths)).not.toBe(before);
  });

  it("changes when a file inside the release is moved, or a new one is added", async () => {
    const before = await sourceHash(paths);
    await rename(join(root, "lib/sdk/app.ts"), join(root, "lib/sdk/application.ts"));
    const moved = await sourceHash(paths);
    expect(moved).not.toBe(before);
    await write("functions/bye/index.ts", "export default {};\n");
    expect(await sourceHash(paths)).not.toBe(moved);
  });
});

describe("the list of release inputs", () => {
  const repo = projectPaths();

  it("covers every project module the build imports", async () => {
    const result = await esbuild({
      entryPoints: [join(repo.root, "lib/node/build/build.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      metafile: true,
      write: false,
      logLevel: "silent",
    });
    const imported = Object.keys(result.metafile.inputs).map((f) => relative(repo.root, join(process.cwd(), f)));
    expect(imported.length).toBeGreaterThan(10);
    const inputs = new Set((await releaseInputs(repo)).map((f) => relative(repo.root, f)));
    expect(imported.filter((f) => !inputs.has(f))).toEqual([]);
  });

  it("names only paths that exist, and no Node-side code outside the build", async () => {
    const { existsSync } = await import("node:fs");
    for (const p of [...WORKER_CODE, ...BUILD_CODE]) expect(existsSync(join(repo.root, p)), p).toBe(true);
    const inputs = (await releaseInputs(repo)).map((f) => relative(repo.root, f));
    for (const outside of [
      "lib/node/data/backup.ts",
      "lib/node/dev/server.ts",
      "lib/node/runtime/supervisor.ts",
      "lib/node/bench/hello.ts",
    ]) {
      expect(inputs).not.toContain(outside);
    }
  });
});
