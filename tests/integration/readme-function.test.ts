/**
 * The README's first function, exactly as the README shows it (its code blocks are read from README.md, so the test
 * follows the text): it builds, is served by `npm start`'s supervisor with the var its wrangler.toml sets, and runs
 * under plain `wrangler dev` with the merged config the build leaves, as it would on Cloudflare.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { build } from "../../lib/node/build/build.ts";
import { createTestProject } from "../helpers/test-project.ts";
import { runScript } from "../helpers/run-script.ts";
import { spawnWrangler } from "../helpers/wrangler.ts";
import type { TestProject } from "../helpers/test-project.ts";

/** Every fenced block whose first line names a file under functions/ (`// functions/x/index.ts`, `# functions/x/wrangler.toml`). */
async function readmeFiles(): Promise<Map<string, string>> {
  const readme = await readFile(join(projectPaths().root, "README.md"), "utf8");
  const files = new Map<string, string>();
  for (const [, body] of readme.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
    const named = /^(?:\/\/|#) (functions\/[a-z0-9-]+\/[\w.]+)\n/.exec(body ?? "");
    if (named?.[1]) files.set(named[1], (body ?? "").slice(named[0].length));
  }
  return files;
}

/** Runs plain `wrangler dev -c <config>` from the project root and answers `probe`'s first response, read, then stops it. */
async function underWranglerDev(
  root: string,
  config: string,
  probe: (base: string) => Promise<Response>,
): Promise<{ status: number; body: unknown }> {
  // Port 0: Wrangler says the port it got ("Ready on ..."); a port picked here first could be taken meanwhile.
  const { child, output } = spawnWrangler(["dev", "-c", config, "--ip", "127.0.0.1", "--port", "0", "--inspector-port", "0"], root);
  try {
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline && child.exitCode === null) {
      const base = /Ready on (http:\/\/127\.0\.0\.1:\d+)/.exec(output())?.[1];
      const res = base ? await probe(`${base}/`).catch(() => undefined) : undefined;
      if (res) return { status: res.status, body: await res.json() };
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`wrangler dev did not answer:\n${output()}`);
  } finally {
    child.kill("SIGTERM");
  }
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("the README's first function", () => {
  let project: TestProject;
  let sup: Supervisor;
  let files: Map<string, string>;

  beforeAll(async () => {
    files = await readmeFiles();
    project = await createTestProject({ realFunctions: false });
    for (const [file, text] of files) {
      await mkdir(dirname(join(project.paths.root, file)), { recursive: true });
      await writeFile(join(project.paths.root, file), text);
    }
    // The embedded database: this function uses none, and the test needs nothing of the run's.
    sup = await startSupervisor({ paths: project.paths, host: "127.0.0.1", port: 0, env: { WORKYARD_SCHEDULER: "off" }, log: () => {} });
  });
  afterAll(async () => {
    await sup?.stop();
    await project?.dispose();
  });

  it("is in the README as an index.ts and a wrangler.toml, importing the SDK through #workyard", () => {
    expect([...files.keys()]).toEqual(expect.arrayContaining(["functions/greet/index.ts", "functions/greet/wrangler.toml"]));
    expect(files.get("functions/greet/index.ts")).toMatch(/from "#workyard\/app"/);
    expect(files.get("functions/greet/index.ts")).not.toMatch(/\.\.\/lib/);
  });

  it("is served by the supervisor with its var, and validates its input", async () => {
    const ok = await post(`${sup.url}/greet`, { name: "Ada" });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ message: "Hello, Ada" });
    const bad = await post(`${sup.url}/greet`, { name: "" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "invalid_input" } });
  });

  it("runs under plain wrangler dev with the merged config the build leaves", async () => {
    const res = await underWranglerDev(project.paths.root, join(project.paths.work, "wrangler", "greet.json"), (base) =>
      post(base, { name: "Ada" }),
    );
    expect(res).toEqual({ status: 200, body: { message: "Hello, Ada" } });
  }, 60_000);
});

describe("the README's first function without its wrangler.toml", () => {
  it("is named by the build, with the var it lacks and where to set it", async () => {
    const files = await readmeFiles();
    const project = await createTestProject({ realFunctions: false });
    try {
      const index = files.get("functions/greet/index.ts") ?? "";
      await mkdir(join(project.paths.functions, "greet"), { recursive: true });
      await writeFile(join(project.paths.functions, "greet", "index.ts"), index);
      const { manifest } = await build(project.paths);
      const greet = manifest.functions.find((f) => f.name === "greet");
      expect(greet?.unsetEnv).toEqual(["GREETING"]);
      const out = await runScript("build.ts", [], { WORKYARD_ROOT: project.paths.root });
      expect(out.code).toBe(0);
      expect(out.stderr).toContain("warning: functions/greet requires GREETING (defineEnv) but nothing sets it");
      expect(out.stderr).toContain("under [vars] in functions/greet/wrangler.toml");
    } finally {
      await project.dispose();
    }
  }, 120_000);
});

describe("plain wrangler dev on a built config", () => {
  it("gets the secrets of the project's .dev.vars, as npm run dev does", async () => {
    const project = await createTestProject({ realFunctions: false, fixtures: ["secret"] });
    try {
      await writeFile(join(project.paths.root, ".dev.vars"), "WORKYARD_TEST_SECRET=from-dev-vars\n");
      await build(project.paths);
      const res = await underWranglerDev(project.paths.root, join(project.paths.work, "wrangler", "secret.json"), (base) => fetch(base));
      const sha256 = createHash("sha256").update("from-dev-vars").digest("hex");
      expect(res).toEqual({ status: 200, body: { present: true, sha256 } });
    } finally {
      await project.dispose();
    }
  }, 120_000);
});
