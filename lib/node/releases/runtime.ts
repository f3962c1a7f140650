/**
 * A release keeps the workerd it was built with in its own folder (runtime/workerd), so that rolling back
 * after an upgrade also rolls the runtime back: the old release runs on the old workerd even once npm has
 * replaced the package. The binary is hard-linked from node_modules (no copy, and the file outlives npm's
 * replacing it) where both are on one filesystem, and copied otherwise.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { copyFile, link, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { workerdPackageBinary as workerdBinary } from "../ops/toolchain/versions.ts";

export const RELEASE_WORKERD = join("runtime", "workerd");

const require = createRequire(import.meta.url);
const versionOf = (name: string) => (require(`${name}/package.json`) as { version: string }).version;

/** What a release built now runs on and was built with (the manifest's `runtime`). */
export function installedRuntime(): { workerd: string; node: string; wrangler: string } {
  return { workerd: versionOf("workerd"), node: process.version, wrangler: versionOf("wrangler") };
}

/** Puts the installed workerd into the release folder being built. */
export async function keepWorkerd(releaseDir: string): Promise<void> {
  const target = join(releaseDir, RELEASE_WORKERD);
  await mkdir(join(releaseDir, "runtime"), { recursive: true });
  await link(workerdBinary(), target).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== "EXDEV" && err.code !== "EPERM") throw err;
    await copyFile(workerdBinary(), target);
  });
}

/** The workerd a release runs on: its own, or the installed package's for a release built before releases kept one. */
export function releaseWorkerd(releaseDir: string): string {
  const own = join(releaseDir, RELEASE_WORKERD);
  return existsSync(own) ? own : workerdBinary();
}
