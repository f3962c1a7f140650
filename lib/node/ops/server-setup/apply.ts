/** Carrying out a setup plan: into a folder (--out, for review or a test), or onto this server (root only). */
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { asUserError, UserError } from "../../common/user-error.ts";
import { formatPlan, shellLine } from "./plan.ts";
import type { Condition, Plan, PlannedFile } from "./plan.ts";

const GENERATED_MARK = "npm run setup:server";

/** Writes every planned file under `out` at its server path (out/etc/systemd/system/...), plus the commands. */
export async function writePlanTo(plan: Plan, out: string): Promise<string[]> {
  const written: string[] = [];
  try {
    for (const f of plan.files) {
      const path = join(out, f.path);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, f.content, { mode: f.mode });
      await chmod(path, f.mode);
      written.push(path);
    }
    const commands = join(out, "setup-commands.txt");
    await writeFile(commands, formatPlan({ ...plan, files: [] }));
    return [...written, commands];
  } catch (err) {
    throw asUserError(err); // the folder the operator named cannot be written
  }
}

async function writeOne(f: PlannedFile, log: (line: string) => void): Promise<void> {
  if (existsSync(f.path)) {
    if (f.keepExisting) {
      await chmod(f.path, f.mode);
      log(`kept     ${f.path} (exists; mode set to ${f.mode.toString(8)})`);
      return;
    }
    const current = await readFile(f.path, "utf8");
    if (current === f.content) return log(`same     ${f.path}`);
    if (f.moveAsideForeign && !current.includes(GENERATED_MARK)) {
      await rename(f.path, `${f.path}.before-workyard`);
      log(`moved    ${f.path} to ${f.path}.before-workyard (not made by workyard)`);
    }
  }
  await mkdir(dirname(f.path), { recursive: true });
  const tmp = `${f.path}.workyard-tmp`;
  await writeFile(tmp, f.content, { mode: f.mode });
  await chmod(tmp, f.mode);
  await chown(tmp, 0, 0);
  await rename(tmp, f.path);
  log(`wrote    ${f.path}`);
}

/** Installs onto this machine: the user, folders, files, then systemctl. Needs root and systemd. */
export async function installPlan(plan: Plan, user: string, log: (line: string) => void): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new UserError("Installing needs root: run `sudo npm run setup:server`, or use --dry-run / --out <dir> to look first");
  const envFile = plan.files.find((f) => f.keepExisting)?.path;
  const facts: Record<Condition, boolean> = {
    always: true,
    "user-missing": (await execa("id", ["-u", user], { reject: false })).exitCode !== 0,
    "caddy-installed": existsSync("/usr/bin/caddy"),
    "env-existed": envFile !== undefined && existsSync(envFile),
  };
  const run = async (cmds: Plan["before"]) => {
    for (const c of cmds.filter((c) => facts[c.when])) {
      log(`run      ${shellLine(c.argv)}`);
      const [bin = "", ...args] = c.argv;
      const r = await execa(bin, args, { reject: false, all: true });
      if (r.exitCode !== 0)
        throw new UserError(`\`${shellLine(c.argv)}\` failed (${c.why}): ${(r.all ?? "").trim() || `exit ${r.exitCode}`}`);
    }
  };
  await run(plan.before);
  for (const f of plan.files) await writeOne(f, log);
  await run(plan.after);
  log("");
  for (const line of facts["env-existed"] ? plan.next.slice(2) : plan.next) log(line);
}
