/**
 * The Node side of the dev loader (lib/workers/dev-loader.ts): its script, bundled once at start, and handing a
 * worker's new bundle to it (a request carrying the run's token). A new bundle is served by the same workerd process (a dynamic worker of workerd's
 * Worker Loader, keyed by the version id), so a code change costs the build and the new isolate's start (tens of
 * ms), not a restart of workerd.
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import type { Miniflare } from "miniflare";
import { DEV_ACTIVATE_HEADER } from "../../shared/names.ts";
import type { DevVersion } from "../../shared/names.ts";
import { WorkerBundler } from "./bundler.ts";

export type { DevVersion };

const LOADER_ENTRY = fileURLToPath(new URL("../../workers/dev-loader.ts", import.meta.url));
const REPOSITORY_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** The dev loader's script (an ES module importing only cloudflare:workers). */
export async function devLoaderScript(outdir: string, compatibilityDate: string): Promise<string> {
  const bundler = new WorkerBundler("dev-loader", {
    root: REPOSITORY_ROOT,
    entry: LOADER_ENTRY,
    outdir,
    compatibilityDate,
    compatibilityFlags: [],
  });
  try {
    return (await bundler.rebuild()).script;
  } finally {
    await bundler.dispose();
  }
}

/** A worker's bundle with its compatibility settings, identified by a hash of all of them. */
export function devVersion(worker: string, script: string, compatibilityDate: string, compatibilityFlags: string[]): DevVersion {
  const id = createHash("sha256")
    .update(JSON.stringify([worker, compatibilityDate, compatibilityFlags]))
    .update(script)
    .digest("base64url")
    .slice(0, 22);
  return { id, worker, script, compatibilityDate, compatibilityFlags };
}

/** The token a request must carry to hand a dev loader a new version: random per run. */
export const devToken = () => randomBytes(24).toString("base64url");

/**
 * Hands each version to its worker's dev loader, at once; returns the workers whose version did not start,
 * with workerd's message (those keep serving what they served).
 */
export async function activate(mf: Miniflare, token: string, versions: DevVersion[]): Promise<Map<string, string>> {
  const results = await Promise.all(
    versions.map(async (version) => {
      const loader = await mf.getWorker(version.worker);
      const res = await loader.fetch("http://dev.invalid/", {
        method: "POST",
        headers: { [DEV_ACTIVATE_HEADER]: token, "content-type": "application/json" },
        body: JSON.stringify(version),
      });
      const text = await res.text();
      return [version.worker, res.ok ? null : text] as const;
    }),
  );
  return new Map(results.flatMap(([worker, error]) => (error === null ? [] : [[worker, error]])));
}
