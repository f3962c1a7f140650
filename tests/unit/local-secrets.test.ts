import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureLocalSecrets } from "../../lib/node/cli/local-secrets.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";

describe("locally generated signing keys", () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it("makes AUTH_JWT_SECRET once, private to the owner, the same at every start, and never overrides a set one", async () => {
    const root = await mkdtemp(join(tmpdir(), "workyard-secrets-"));
    dirs.push(root);
    const paths = projectPaths(root);
    const lines: string[] = [];
    const first: NodeJS.ProcessEnv = {};
    await ensureLocalSecrets(paths, first, (l) => lines.push(l));
    expect(first.AUTH_JWT_SECRET).toMatch(/^[\w-]{64}$/);
    expect(lines.join("\n")).toMatch(/AUTH_JWT_SECRET is not set: using a generated one kept in .*secrets\/AUTH_JWT_SECRET/);
    expect(lines.join("\n")).not.toContain(first.AUTH_JWT_SECRET);
    expect((await stat(join(paths.work, "secrets", "AUTH_JWT_SECRET"))).mode & 0o777).toBe(0o600);

    const second: NodeJS.ProcessEnv = {};
    await ensureLocalSecrets(paths, second, () => {});
    expect(second.AUTH_JWT_SECRET).toBe(first.AUTH_JWT_SECRET);

    const set: NodeJS.ProcessEnv = { AUTH_JWT_SECRET: "x".repeat(40) };
    const quiet: string[] = [];
    await ensureLocalSecrets(paths, set, (l) => quiet.push(l));
    expect(set.AUTH_JWT_SECRET).toBe("x".repeat(40));
    expect(quiet).toEqual([]);
  });
});
