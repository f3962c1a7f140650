/** Wrangler's [build] as the build runs it (lib/node/build/custom-build.ts): in the function's folder, its failure said. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCustomBuild } from "../../lib/node/build/custom-build.ts";
import { gatewayEntry } from "../../lib/node/build/gateway-entry.ts";
import { UserError } from "../../lib/node/common/user-error.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "workyard-custom-build-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("a function's [build] command", () => {
  it("runs in its folder, with the project's tools on PATH and NODE_ENV=production", async () => {
    const ms = await runCustomBuild(
      "web",
      { command: 'echo "$NODE_ENV $PWD" > out.txt && command -v vite', cwd: dir, watchDirs: [] },
      process.cwd(),
    );
    expect(ms).toBeGreaterThan(0);
    expect((await readFile(join(dir, "out.txt"), "utf8")).trim()).toBe(`production ${dir}`);
  });

  it("fails as the operator's error, with the command, its exit code and the end of its output", async () => {
    const failure = await runCustomBuild(
      "web",
      { command: "echo building; echo 'src/a.tsx: broken' >&2; exit 3", cwd: dir, watchDirs: [] },
      dir,
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(UserError);
    expect((failure as Error).message).toMatch(
      /^Function "web": its \[build\] command `.*` failed in .* \(exit 3\):\nbuilding\nsrc\/a.tsx: broken\n/,
    );
    expect((failure as Error).message).toContain("remove [build] from functions/web/wrangler.toml");
  });
});

describe("the gateway's entry", () => {
  it("exports the FunctionCall entrypoint that [[services]] bindings reach", () => {
    expect(gatewayEntry("/repo", "2026-01-01", []).contents).toContain("export const FunctionCall = createFunctionCall(inline);");
  });
});
