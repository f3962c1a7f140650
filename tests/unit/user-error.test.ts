import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BuildError } from "../../lib/node/build/build.ts";
import { BundleError } from "../../lib/node/build/bundle.ts";
import { ConfigError } from "../../lib/node/build/wrangler-config.ts";
import { runCommand } from "../../lib/node/cli/run.ts";
import { asUserError, describeFailure, isUserError, UserError } from "../../lib/node/common/user-error.ts";
import { connectFailure } from "../../lib/node/data/connect-failure.ts";
import { PgToolError } from "../../lib/node/data/pg-tools.ts";
import { ensurePortFree } from "../../lib/node/dev/port.ts";
import { DevBuildError } from "../../lib/node/dev/bundler.ts";
import { bindError } from "../../lib/node/runtime/listen-socket.ts";

describe("UserError and its subclasses", () => {
  it("are named after their class and print as their message; anything else prints its stack", () => {
    const bundle = new BundleError("hello", "x is not defined");
    const errors = [
      new ConfigError("bad toml"),
      new PgToolError("pg_dump failed"),
      bundle,
      new BuildError([bundle]),
      new DevBuildError("fn-hello", ["oops"]),
    ];
    expect(errors.map((e) => [e.name, isUserError(e), describeFailure(e) === e.message])).toEqual([
      ["ConfigError", true, true],
      ["PgToolError", true, true],
      ["BundleError", true, true],
      ["BuildError", true, true],
      ["DevBuildError", true, true],
    ]);
    const bug = new TypeError("undefined is not a function");
    expect(describeFailure(bug)).toBe(bug.stack);
    expect(describeFailure("a string")).toBe("a string");
  });

  it("asUserError keeps the message and the cause, and leaves a UserError as it is", () => {
    const cause = Object.assign(new Error("EACCES: permission denied, mkdir '/var/backups/workyard'"), { code: "EACCES" });
    const made = asUserError(cause);
    expect(made).toBeInstanceOf(UserError);
    expect(made.message).toBe(cause.message);
    expect(made.cause).toBe(cause);
    const already = new ConfigError("x");
    expect(asUserError(already)).toBe(already);
  });

  it("connectFailure makes an unreachable or refusing database the operator's mistake, and nothing else", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    const password = Object.assign(new Error('password authentication failed for user "app"'), { code: "28P01" });
    const noDatabase = Object.assign(new Error('database "x" does not exist'), { code: "3D000" });
    for (const err of [refused, password, noDatabase]) {
      const made = connectFailure(err);
      expect(isUserError(made)).toBe(true);
      expect((made as Error).message).toBe(err.message);
    }
    const syntax = Object.assign(new Error("syntax error"), { code: "42601" });
    const bug = new Error("boom");
    expect(connectFailure(syntax)).toBe(syntax);
    expect(connectFailure(bug)).toBe(bug);
  });

  it("a taken port is the operator's mistake, with what to do; other bind failures stay as they are", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const err = await ensurePortFree("127.0.0.1", port).catch((e: unknown) => e);
      expect(isUserError(err)).toBe(true);
      expect((err as Error).message).toBe(
        `127.0.0.1:${port} is already in use: stop what is listening there, or choose another port with PORT=...`,
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const denied = Object.assign(new Error("listen EACCES"), { code: "EACCES" });
    expect(bindError("127.0.0.1", 80, denied)).toBe(denied);
  });
});

describe("runCommand", () => {
  afterEach(() => {
    process.exitCode = undefined;
    vi.restoreAllMocks();
  });

  const run = async (main: () => Promise<number | undefined> | Promise<void>, prefix?: string) => {
    const printed: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => void printed.push(line));
    await runCommand(main, prefix);
    const code = process.exitCode;
    process.exitCode = undefined;
    return { code, printed };
  };

  it("exits with what main answers, 0 when it answers nothing, and prints nothing", async () => {
    expect(await run(async () => 3)).toEqual({ code: 3, printed: [] });
    expect(await run(async () => {})).toEqual({ code: 0, printed: [] });
  });

  it("prints an operator's mistake as its message (after the prefix), a bug with its stack, and exits 1", async () => {
    const mistake = async () => {
      throw new UserError('No backup of "app" in /backups');
    };
    expect(await run(mistake, "Backup verification FAILED: ")).toEqual({
      code: 1,
      printed: ['Backup verification FAILED: No backup of "app" in /backups'],
    });
    const bug = new Error("boom");
    expect(
      await run(async () => {
        throw bug;
      }),
    ).toEqual({ code: 1, printed: [bug.stack] });
  });
});
