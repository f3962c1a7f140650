/**
 * npm run setup:server: the generated units pass `systemd-analyze verify` (this machine is a container with no
 * running systemd; verify still loads each unit file, checks every key and value, that each Exec binary exists,
 * and that the units they Require/name exist), the Caddyfile passes `caddy validate`, the dry run prints every
 * file and command and touches nothing, and the PgBouncer config the unit writes from the env file is right.
 */
import { execFile } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEnv, promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSetupOptions } from "../../lib/node/ops/server-setup/options.ts";
import { setupPlan } from "../../lib/node/ops/server-setup/plan.ts";
import { pgbouncerSettingsFromEnv } from "../../lib/node/runtime/standalone-services.ts";
import { runScript } from "../helpers/run-script.ts";

const run = promisify(execFile);
const scriptEnv = { DATABASE_URL: "postgres://app:db-secret@127.0.0.1:5432/app" };
/** Runs a script and rejects when it fails (unlike runScript, for runs that must succeed). */
const script = (script: string, args: string[]) =>
  run(process.execPath, [`scripts/${script}`, ...args], { env: { ...process.env, ...scriptEnv } });

let out: string;
let stdout: string;
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "workyard-setup-"));
  ({ stdout } = await script("setup-server.ts", [
    "--out",
    out,
    "--domain",
    "api.example.com",
    "--email",
    "ops@example.com",
    "--memory-max",
    "3G",
    "--cpu-quota",
    "150%",
  ]));
});
afterAll(() => rm(out, { recursive: true, force: true }));

const unitDir = () => join(out, "etc/systemd/system");

describe("setup:server --out", () => {
  it("writes the units, the env file, log retention and the Caddyfile", async () => {
    expect(stdout).toMatch(/wrote 10 files/);
    expect((await readdir(unitDir())).sort()).toEqual([
      "workyard-backup.service",
      "workyard-backup.timer",
      "workyard-pgbouncer.service",
      "workyard-redis-proxy.service",
      "workyard.service",
    ]);
    expect((await stat(join(out, "etc/workyard/env"))).mode & 0o777).toBe(0o600);
    expect(existsSync(join(out, "etc/systemd/journald.conf.d/workyard.conf"))).toBe(true);
  });

  it("units pass systemd-analyze verify with no warning", async () => {
    const units = (await readdir(unitDir())).map((u) => join(unitDir(), u));
    // --man=no: no man pages in the container; --generators=no: no fstab/etc generators, which need a booted system.
    const r = await run("systemd-analyze", ["verify", "--man=no", "--generators=no", ...units], { cwd: unitDir() }).then(
      (ok) => ({ code: 0, stderr: ok.stderr }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("systemd-analyze verify is not a rubber stamp: it fails a unit with a bad limit or a missing binary", async () => {
    const unit = await readFile(join(unitDir(), "workyard.service"), "utf8");
    const bad = join(out, "bad");
    await mkdir(bad, { recursive: true });
    await writeFile(
      join(bad, "workyard-bad.service"),
      unit.replace("MemoryMax=3G", "MemoryMax=lots").replace(`ExecStart=${process.execPath}`, "ExecStart=/nonexistent/node"),
    );
    const r = await run("systemd-analyze", ["verify", "--man=no", "--generators=no", join(bad, "workyard-bad.service")]).then(
      () => ({ code: 0, stderr: "" }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Invalid memory limit 'lots'/);
    expect(r.stderr).toMatch(/\/nonexistent\/node is not executable/);
  });

  it("units carry the restart policy, limits, hardening, user and env file", async () => {
    const unit = await readFile(join(unitDir(), "workyard.service"), "utf8");
    for (const line of [
      "User=workyard",
      "EnvironmentFile=/etc/workyard/env",
      "Restart=always",
      "MemoryMax=3G",
      "CPUQuota=150%",
      "TasksMax=1024",
      "NoNewPrivileges=yes",
      "PrivateTmp=yes",
      "ProtectSystem=strict",
      `ReadWritePaths=${join(process.cwd(), ".workyard")}`,
      // The project's own Node, the one npm ran setup:server (and this test) on: node_modules/.bin/node.
      `ExecStart=${realpathSync(join(process.cwd(), "node_modules/.bin/node"))} scripts/start.ts`,
      `ExecStartPre=${process.execPath} scripts/migrate.ts up`,
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
    const pgbouncer = await readFile(join(unitDir(), "workyard-pgbouncer.service"), "utf8");
    expect(pgbouncer).toMatch(/^ExecStart=\/usr\/sbin\/pgbouncer \/run\/workyard-pgbouncer\/pgbouncer.ini$/m);
    const timer = await readFile(join(unitDir(), "workyard-backup.timer"), "utf8");
    expect(timer).toMatch(/^OnCalendar=\*-\*-\* 03:15:00 UTC$/m);
    const backup = await readFile(join(unitDir(), "workyard-backup.service"), "utf8");
    expect(backup.match(/^ExecStart=.*$/gm)).toEqual([
      `ExecStart=${process.execPath} scripts/backup.ts`,
      `ExecStart=${process.execPath} scripts/backup-verify.ts`,
    ]);
  });

  it("the env file holds fresh secrets, and the PgBouncer config the unit writes from it is consistent", async () => {
    const env = parseEnv(await readFile(join(out, "etc/workyard/env"), "utf8"));
    expect(env.DATABASE_URL).toBe("postgres://app:db-secret@127.0.0.1:5432/app");
    expect(env.PGBOUNCER_URL).toMatch(/^postgres:\/\/app:[\w-]{32}@127\.0\.0\.1:6433\/app$/);
    expect(env.REDIS_PROXY_TOKEN).toMatch(/^[\w-]{32}$/);
    expect(env.WORKYARD_INTERNAL_TOKEN).not.toBe(env.REDIS_PROXY_TOKEN);
    const settings = pgbouncerSettingsFromEnv(env, "/run/workyard-pgbouncer");
    expect(settings).toMatchObject({ port: 6433, databaseUrl: env.DATABASE_URL });
    expect(() => pgbouncerSettingsFromEnv({ ...env, PGBOUNCER_URL: "postgres://other:pw@10.0.0.1:6433/app" }, "/x")).toThrow(
      /host must be 127\.0\.0\.1.*user must be DATABASE_URL's \("app"\)/,
    );
  });
});

describe("the Caddyfile", () => {
  it("passes caddy validate", async () => {
    const { stdout: out2, stderr } = await run("caddy", [
      "validate",
      "--config",
      join(out, "etc/caddy/Caddyfile"),
      "--adapter",
      "caddyfile",
    ]);
    expect(`${out2}${stderr}`).toMatch(/Valid configuration/);
  });

  it("proxies the domain to workerd's loopback port and trusts no client-sent X-Forwarded-For", async () => {
    const { stdout: json } = await run("caddy", ["adapt", "--config", join(out, "etc/caddy/Caddyfile"), "--adapter", "caddyfile"]);
    const config = JSON.parse(json) as { apps: { http: { servers: Record<string, { routes: unknown[] }> }; tls?: unknown } };
    const text = JSON.stringify(config);
    expect(text).toContain('"host":["api.example.com"]');
    expect(text).toContain('"dial":"127.0.0.1:8787"');
    expect(text).toContain('"email":"ops@example.com"');
    // Without trusted_proxies Caddy replaces X-Forwarded-For with the peer it saw: the gateway's last entry is the client.
    expect(text).not.toContain("trusted_proxies");
    expect(text).toContain('"try_duration":10000000000');
    // CONNECT is answered by Caddy (405, connection closed): forwarded, workerd would answer it with a 500.
    expect(text).toMatch(/"method":\["CONNECT"\]/);
    expect(text).toMatch(/"close":true[^}]*"status_code":405|"status_code":405[^}]*"close":true/);
  });
});

describe("setup:server --dry-run", () => {
  it("prints every file and command and touches nothing", async () => {
    const plan = setupPlan(parseSetupOptions({ root: process.cwd(), node: process.execPath }));
    const before = new Map(plan.files.map((f) => [f.path, existsSync(f.path)]));
    const { stdout: printed } = await script("setup-server.ts", ["--dry-run", "--domain", "api.example.com"]);
    for (const f of plan.files) {
      expect(printed).toContain(`=== ${f.path}`);
      expect(existsSync(f.path)).toBe(before.get(f.path));
    }
    expect(printed).toMatch(/^ {2}useradd --system .* workyard {3}# if the user does not exist$/m);
    expect(printed).toMatch(/^ {2}systemctl daemon-reload$/m);
    expect(printed).toMatch(
      /^ {2}systemctl enable workyard-pgbouncer.service workyard-redis-proxy.service workyard.service workyard-backup.timer$/m,
    );
    // Secrets are neither made nor shown.
    expect(printed).not.toContain("db-secret");
    expect(printed).toMatch(/^REDIS_PROXY_TOKEN=GENERATED$/m);
  });

  it("refuses bad options, naming each flag", async () => {
    const refused = await runScript("setup-server.ts", ["--dry-run", "--memory-max", "lots", "--cpu-quota", "1.5"], scriptEnv);
    expect(refused.stderr).toMatch(/--memory-max: a size such as 512M or 2G; --cpu-quota: a percentage/);
  });
});
