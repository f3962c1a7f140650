/** The build with real Wrangler: a release per source state, reuse when unchanged, failures named. */
import { existsSync } from "node:fs";
import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBenchProject } from "../../lib/node/bench/project.ts";
import { build, BuildError } from "../../lib/node/build/build.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { installedVersion, workerdPackageBinary } from "../../lib/node/ops/toolchain/versions.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

let project: TestProject;
beforeAll(async () => {
  project = await createTestProject({ sharedBundles: false }); // its cache must hold only what its builds made
});
afterAll(() => project?.dispose());

describe("build", () => {
  it("bundles each function into a release with a manifest, hashes and a workerd config", async () => {
    const first = await build(project.paths);
    expect(first.reused).toBe(false);
    const { manifest, releaseDir } = first;
    expect(manifest.functions.map((f) => [f.name, f.route, f.binding])).toEqual([
      ["auth", "/auth", "FN_AUTH"],
      ["hello", "/hello", "FN_HELLO"],
      ["links", "/links", "FN_LINKS"],
      ["webhooks", "/webhooks", "FN_WEBHOOKS"],
    ]);
    const hello = manifest.functions.find((f) => f.name === "hello");
    const links = manifest.functions.find((f) => f.name === "links");
    expect(hello?.vars).toEqual({
      WORKYARD_FUNCTIONS: "auth,hello,links,webhooks",
      APP_NAME: "workyard",
      GREETING: "Hello",
      CORS_ORIGINS: "",
      AUTH_ISSUER: "workyard",
      AUTH_AUDIENCE: "workyard",
    });
    expect(links?.secrets).toEqual(["DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "AUTH_JWT_SECRET"]);
    expect(links?.crons).toEqual(["* * * * *", "*/5 * * * *"]);
    for (const fn of manifest.functions) {
      expect(existsSync(join(releaseDir, fn.module))).toBe(true);
      expect(existsSync(join(releaseDir, `${fn.module}.map`))).toBe(true);
      expect(fn.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(await readFile(join(releaseDir, "workerd.capnp"), "utf8")).toContain('name = "fn-links"');
    // The release keeps the workerd it was built with: the installed binary, hard-linked (no copy).
    expect(manifest.runtime).toEqual({
      workerd: installedVersion(process.cwd(), "workerd"),
      node: process.version,
      wrangler: installedVersion(process.cwd(), "wrangler"),
    });
    expect((await stat(join(releaseDir, "runtime", "workerd"))).ino).toBe((await stat(workerdPackageBinary())).ino);
    // The merged Wrangler config is left where `wrangler dev -c` / `wrangler deploy -c` can use it.
    const merged = JSON.parse(await readFile(join(project.paths.wranglerConfigs, "hello.json"), "utf8"));
    expect(merged).toMatchObject({
      name: "hello",
      main: "../../functions/hello/index.ts",
      compatibility_date: "2026-11-23",
      compatibility_flags: [],
    });
  });

  it("reuses the release when nothing changed and builds a new one when a source changes", async () => {
    const again = await build(project.paths);
    expect(again.reused).toBe(true);
    await writeFile(join(project.paths.functions, "hello", "extra.ts"), "export const x = 1;\n");
    const changed = await build(project.paths);
    expect(changed.reused).toBe(false);
    expect(changed.manifest.id).not.toBe(again.manifest.id);
  });

  it("runs Wrangler again only for the bundles whose inputs changed", async () => {
    const before = await build(project.paths);
    const hashes = (m: typeof before.manifest) =>
      Object.fromEntries([["_gateway", m.gateway.sha256], ...m.functions.map((f) => [f.name, f.sha256])]);
    // A file no bundle imports: a new release, every bundle from the cache.
    await writeFile(join(project.paths.functions, "hello", "unused.ts"), "export const y = 2;\n");
    const untouched = await build(project.paths);
    expect(untouched.manifest.id).not.toBe(before.manifest.id);
    expect(hashes(untouched.manifest)).toEqual(hashes(before.manifest));
    // A cache entry is written only after Wrangler ran for it: the newest of a bundle's entries (one per key).
    const written = async (name: string) => {
      const dir = join(project.paths.bundleCache, name);
      const times = await Promise.all((await readdir(dir)).map(async (key) => (await stat(join(dir, key, "entry.json"))).mtimeMs));
      return Math.max(...times);
    };
    // A var alone: a new release (vars are in its manifest), every bundle from the cache (vars are never in a bundle).
    const helloWrittenBefore = await written("hello");
    const helloToml = join(project.paths.functions, "hello", "wrangler.toml");
    await writeFile(helloToml, (await readFile(helloToml, "utf8")).replace('GREETING = "Hello"', 'GREETING = "Hi"'));
    const revarred = await build(project.paths);
    expect(revarred.manifest.id).not.toBe(untouched.manifest.id);
    expect(revarred.manifest.functions.find((f) => f.name === "hello")?.vars).toMatchObject({ GREETING: "Hi" });
    expect(hashes(revarred.manifest)).toEqual(hashes(before.manifest));
    expect(await written("hello")).toBe(helloWrittenBefore);
    // An imported file: hello and the gateway (which holds hello: isolate = false) are made again, the others are not.
    const writtenBefore = { hello: await written("hello"), links: await written("links"), auth: await written("auth") };
    const entry = join(project.paths.functions, "hello", "index.ts");
    const unedited = await readFile(entry, "utf8");
    await writeFile(entry, `${unedited}\nconsole.log("bundle-cache-marker");\n`);
    const edited = await build(project.paths);
    const [was, now] = [hashes(before.manifest), hashes(edited.manifest)];
    expect(now.hello).not.toBe(was.hello);
    expect(now._gateway).not.toBe(was._gateway);
    expect(now.links).toBe(was.links);
    expect(now.auth).toBe(was.auth);
    expect(await written("hello")).toBeGreaterThan(writtenBefore.hello);
    expect([await written("links"), await written("auth")]).toEqual([writtenBefore.links, writtenBefore.auth]);
    const hello = edited.manifest.functions.find((f) => f.name === "hello");
    expect(await readFile(join(edited.releaseDir, hello?.module ?? ""), "utf8")).toContain("bundle-cache-marker");
    // --force makes every bundle again (the same bytes from the same sources).
    const forced = await build(project.paths, { force: true });
    expect(hashes(forced.manifest)).toEqual(now);
    // The edit undone (and a new release): hello's earlier bundle is still kept under its entry file's earlier content,
    // and used; the gateway's entry file (generated) did not change, so its one entry held the edited bundle.
    const editedWritten = { hello: await written("hello"), _gateway: await written("_gateway") };
    await writeFile(entry, unedited);
    await writeFile(join(project.paths.functions, "hello", "unused-2.ts"), "export const z = 3;\n");
    const undone = await build(project.paths);
    expect(undone.reused).toBe(false);
    expect(hashes(undone.manifest)).toEqual(was);
    expect(await written("hello")).toBe(editedWritten.hello);
    expect(await written("_gateway")).toBeGreaterThan(editedWritten._gateway);
  });

  it("in a copied project, builds the copy's sources: a bundle is reused only when the copy's own files match", async () => {
    await build(project.paths);
    const copyRoot = `${project.paths.root}-copy`;
    await cp(project.paths.root, copyRoot, { recursive: true, verbatimSymlinks: true });
    try {
      const copy = projectPaths(copyRoot);
      const entry = join(copy.functions, "hello", "index.ts");
      await writeFile(entry, `${await readFile(entry, "utf8")}\nconsole.log("copied-project-marker");\n`);
      const built = await build(copy);
      const hello = built.manifest.functions.find((f) => f.name === "hello");
      // (includes, not toContain: a failure would print a whole bundle)
      const has = async (dir: string, module = "") => (await readFile(join(dir, module), "utf8")).includes("copied-project-marker");
      expect(await has(built.releaseDir, hello?.module)).toBe(true);
      expect(await has(built.releaseDir, built.manifest.gateway.module)).toBe(true);
      // The original is untouched and its own bundles are still its own.
      const original = await build(project.paths);
      const own = original.manifest.functions.find((f) => f.name === "hello");
      expect(await has(original.releaseDir, own?.module)).toBe(false);
    } finally {
      await rm(copyRoot, { recursive: true, force: true });
    }
  });

  it("fails with the function's name and Wrangler's message, and leaves no half-written release", async () => {
    const dir = join(project.paths.functions, "broken");
    await mkdir(dir);
    await writeFile(
      join(dir, "index.ts"),
      'import { nothing } from "../missing.ts";\nexport default { fetch: () => new Response(nothing) };\n',
    );
    const err = await build(project.paths).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toMatch(/Function "broken" failed to bundle/);
    expect((err as Error).message).toMatch(/missing\.ts/);
    expect((await readdir(project.paths.releases)).filter((d) => d.startsWith(".staging"))).toEqual([]);
  });

  // npm run bench builds small projects of its own with the same build(); one broke unseen when the build began to
  // read package.json (the bench's projects had none).
  it("builds the bench's own project (the database read) with the real build", async () => {
    const bench = await createTestProject({ realFunctions: false });
    try {
      const fixture = join(process.cwd(), "lib/node/bench/db-read");
      const built = await buildBenchProject(bench.paths, "db-read", fixture, [{ name: "db-read-copy", wranglerToml: "" }]);
      expect(built.manifest.functions.map((f) => f.name).sort()).toEqual(["db-read", "db-read-copy"]);
    } finally {
      await bench.dispose();
    }
  }, 60_000);
});
