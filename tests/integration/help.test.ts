/**
 * Every npm script answers --help with its usage and exits 0 without doing its work, and a script that takes no
 * arguments refuses one instead of ignoring it (`npm run deploy -- --help` once really deployed).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { projectPaths } from "../../lib/node/common/paths.ts";

const root = projectPaths().root;
const scripts = Object.entries(
  (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts,
)
  .filter(([, command]) => /^node (scripts|tests\/walkthrough)\/[\w-]+\.ts$/.test(command))
  .map(([name, command]) => ({ name, file: command.slice("node ".length) }));

describe("every command", () => {
  it("is found in package.json", () => {
    expect(scripts.length).toBeGreaterThan(15);
  });

  // Each command is a child process of its own: they run side by side (concurrent tests assert with their own expect).
  it.concurrent.for(scripts)("$name answers --help with its usage, exit 0", async ({ file }, { expect }) => {
    const r = await execa(process.execPath, [file, "--help"], {
      cwd: root,
      reject: false,
      timeout: 20_000,
      env: { WORKYARD_ROOT: "/nonexistent" },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm (run )?[\w:-]+|^usage: npm start/);
  });

  it.concurrent.for(["deploy", "releases", "crons", "dashboard", "backup", "build"])(
    "%s refuses an argument it does not take, exit 2",
    async (name, { expect }) => {
      const file = scripts.find((s) => s.name === name)?.file ?? "";
      const r = await execa(process.execPath, [file, "--no-such-flag"], { cwd: root, reject: false, timeout: 20_000 });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/usage: npm run /);
    },
  );
});
