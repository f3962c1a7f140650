/**
 * Everything `npm run setup:server` would do on a server, as data: the commands before the files (the user,
 * the folders it writes to), the files with their modes and owners, and the commands after (systemctl).
 * The dry run prints it, --out writes the files into a folder, the install carries it out.
 */
import { join } from "node:path";
import { caddyfile } from "./caddyfile.ts";
import { envFile } from "./env-file.ts";
import type { SetupOptions } from "./options.ts";
import {
  backupTimer,
  backupUnit,
  journaldDropIn,
  pgbouncerUnit,
  redisProxyUnit,
  supervisorUnit,
  tmpfilesRule,
  UNIT_NAMES,
} from "./systemd-units.ts";

export interface PlannedFile {
  path: string;
  content: string;
  mode: number;
  /** Keep an existing file as it is (the env file: it holds the secrets in use). */
  keepExisting?: boolean;
  /** An existing file of a different origin is moved aside to <path>.before-workyard first. */
  moveAsideForeign?: boolean;
  why: string;
}

/** When a command runs on the server. */
export type Condition = "always" | "user-missing" | "caddy-installed" | "env-existed";

export interface PlannedCommand {
  argv: string[];
  when: Condition;
  why: string;
}

export interface Plan {
  before: PlannedCommand[];
  files: PlannedFile[];
  after: PlannedCommand[];
  /** What is left to the person installing. */
  next: string[];
}

/** The plan for these options; `secret` makes the env file's tokens (the dry run passes a placeholder). */
export function setupPlan(o: SetupOptions, secret?: () => string): Plan {
  const units = UNIT_NAMES;
  const unit = (name: string) => join(o.unitDir, name);
  const work = join(o.root, ".workyard");
  const envPath = join(o.etcDir, "env");
  const services = [units.pgbouncer, units.redisProxy, units.supervisor];
  return {
    before: [
      {
        argv: [
          "useradd",
          "--system",
          "--user-group",
          "--home-dir",
          "/var/lib/workyard",
          "--no-create-home",
          "--shell",
          "/usr/sbin/nologin",
          o.user,
        ],
        when: "user-missing",
        why: `the dedicated system user the services run as (no login, no shell)`,
      },
      {
        argv: ["install", "-d", "-o", o.user, "-g", o.user, "-m", "0750", work],
        when: "always",
        why: "where the supervisor builds releases",
      },
      { argv: ["chown", "-R", `${o.user}:${o.user}`, work], when: "always", why: "earlier builds made as another user" },
      {
        argv: ["install", "-d", "-o", o.user, "-g", o.user, "-m", "0700", o.backupDir],
        when: "always",
        why: "where backups go (readable by the service user only)",
      },
      { argv: ["install", "-d", "-o", "root", "-g", "root", "-m", "0755", o.etcDir], when: "always", why: "settings" },
    ],
    files: [
      { path: envPath, content: envFile(o, secret), mode: 0o600, keepExisting: true, why: "settings and secrets for every unit" },
      { path: unit(units.pgbouncer), content: pgbouncerUnit(o), mode: 0o644, why: "PgBouncer" },
      { path: unit(units.redisProxy), content: redisProxyUnit(o), mode: 0o644, why: "the Redis proxy" },
      { path: unit(units.supervisor), content: supervisorUnit(o), mode: 0o644, why: "workerd and the scheduler" },
      { path: unit(units.backup), content: backupUnit(o), mode: 0o644, why: "backup, then restore test" },
      { path: unit(units.backupTimer), content: backupTimer(o), mode: 0o644, why: "the nightly backup" },
      { path: "/etc/systemd/journald.conf.d/workyard.conf", content: journaldDropIn(), mode: 0o644, why: "log retention" },
      { path: "/etc/tmpfiles.d/workyard.conf", content: tmpfilesRule(o), mode: 0o644, why: "old build logs removed" },
      { path: o.caddyfile, content: caddyfile(o), mode: 0o644, moveAsideForeign: true, why: "TLS in front (Caddy)" },
    ],
    after: [
      { argv: ["systemctl", "daemon-reload"], when: "always", why: "systemd reads the new units" },
      { argv: ["systemctl", "restart", "systemd-journald.service"], when: "always", why: "journald reads its new limits" },
      { argv: ["systemctl", "enable", ...services, units.backupTimer], when: "always", why: "start at boot" },
      { argv: ["systemctl", "restart", ...services], when: "env-existed", why: "the env file was already filled in: (re)start now" },
      { argv: ["systemctl", "start", units.backupTimer], when: "env-existed", why: "the nightly backup" },
      { argv: ["systemctl", "reload-or-restart", "caddy.service"], when: "caddy-installed", why: "Caddy serves the new site" },
    ],
    next: [
      `Check ${envPath}: DATABASE_URL (the role needs CREATEDB for backup:verify) and REDIS_URL; add your functions' secrets.`,
      `Then: systemctl restart ${services.join(" ")} && systemctl start ${units.backupTimer}`,
      "Caddy: apt-get install caddy if it is not installed (its package starts it with /etc/caddy/Caddyfile); point the domain's DNS here.",
      `Logs: journalctl -u 'workyard*' -f   Status: systemctl status 'workyard*'   Backups: systemctl list-timers ${units.backupTimer}`,
    ],
  };
}

/** A command as one shell line, quoted where needed. */
export const shellLine = (argv: string[]) =>
  argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");

const conditionText: Record<Condition, string> = {
  always: "",
  "user-missing": "   # if the user does not exist",
  "caddy-installed": "   # if Caddy is installed",
  "env-existed": "   # if the env file already existed",
};

/** The plan, for people: every command and every file with its content. */
export function formatPlan(plan: Plan): string {
  const cmd = (c: PlannedCommand) => `  ${shellLine(c.argv)}${conditionText[c.when]}`;
  const out = ["commands, before the files:", ...plan.before.map(cmd), "", "files:"];
  for (const f of plan.files) {
    const notes = [
      f.keepExisting && "kept if it exists",
      f.moveAsideForeign && "an existing one not made by workyard is moved to .before-workyard",
    ].filter(Boolean);
    out.push(
      "",
      `=== ${f.path}  (mode ${f.mode.toString(8).padStart(4, "0")}, owner root; ${f.why}${notes.length ? `; ${notes.join("; ")}` : ""})`,
      f.content.trimEnd(),
    );
  }
  out.push("", "commands, after the files:", ...plan.after.map(cmd), "", "then:", ...plan.next.map((n) => `  ${n}`));
  return `${out.join("\n")}\n`;
}
