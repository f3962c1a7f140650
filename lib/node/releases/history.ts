/**
 * Which release is live, which were live before, and which are kept. Files under .workyard/run/:
 *   current        the release `npm run deploy` / `npm run rollback` made live: `npm start` serves it
 *   history.json   every activation (start, deploy, rollback; "sources": a start told to serve the sources over the
 *                  deployed release), oldest first: what rollback returns to
 * Release folders are immutable (named by the hash of their sources), so going back is only a switch.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { MANIFEST_FILE, readManifest } from "./manifest.ts";
import type { Manifest } from "./manifest.ts";
import type { ProjectPaths } from "../common/paths.ts";

export type Activation = z.infer<typeof activationSchema>;
const activationSchema = z.object({ id: z.string(), at: z.string(), how: z.enum(["start", "sources", "deploy", "rollback"]) });
const historySchema = z.array(activationSchema);

/** How many releases `npm run deploy` keeps (RELEASES_KEPT); the live one and its predecessor are always kept. */
export const DEFAULT_RELEASES_KEPT = 5;
const HISTORY_KEPT = 200;

const runDir = (paths: ProjectPaths) => dirname(paths.controlInfo);
const currentFile = (paths: ProjectPaths) => join(runDir(paths), "current");
const historyFile = (paths: ProjectPaths) => join(runDir(paths), "history.json");

/** Writes a file whole or not at all (a crash mid-write never leaves half a file). */
async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** The release a deploy or rollback made live, if its folder still exists. */
export async function deployedRelease(paths: ProjectPaths): Promise<string | undefined> {
  const id = (await readFile(currentFile(paths), "utf8").catch(() => "")).trim();
  return id && existsSync(join(paths.releases, id, MANIFEST_FILE)) ? id : undefined;
}

export async function readHistory(paths: ProjectPaths): Promise<Activation[]> {
  const text = await readFile(historyFile(paths), "utf8").catch(() => undefined);
  if (text === undefined) return [];
  const parsed = historySchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : [];
}

/**
 * Records that `id` went live; a deploy or rollback also makes it what `npm start` serves. Returns the
 * history as written.
 */
export async function recordActivation(paths: ProjectPaths, id: string, how: Activation["how"]): Promise<Activation[]> {
  const history = [...(await readHistory(paths)), { id, at: new Date().toISOString(), how }].slice(-HISTORY_KEPT);
  await writeAtomic(historyFile(paths), `${JSON.stringify(history, null, 2)}\n`);
  if (how === "deploy" || how === "rollback") await writeAtomic(currentFile(paths), `${id}\n`);
  return history;
}

/**
 * The release that was live before `live`: what `npm run rollback` returns to. A start that served the sources over
 * the deployed release (`npm start -- --sources`) was a look, not a release anyone shipped: it is passed over.
 */
export function previousRelease(history: readonly Activation[], live: string): string | undefined {
  return history.findLast((a) => a.id !== live && a.how !== "sources")?.id;
}

export interface ReleaseInfo {
  id: string;
  dir: string;
  manifest: Manifest;
}

/** Every release folder with a valid manifest, newest first. */
export async function listReleases(paths: ProjectPaths): Promise<ReleaseInfo[]> {
  if (!existsSync(paths.releases)) return [];
  const names = (await readdir(paths.releases)).filter((n) => !n.startsWith(".") && existsSync(join(paths.releases, n, MANIFEST_FILE)));
  const found = await Promise.all(
    names.map(async (id) => {
      const dir = join(paths.releases, id);
      const manifest = await readManifest(dir).catch(() => undefined);
      return manifest ? [{ id, dir, manifest }] : [];
    }),
  );
  return found.flat().sort((a, b) => b.manifest.createdAt.localeCompare(a.manifest.createdAt));
}

/** RELEASES_KEPT: a whole number >= 2. */
export function releasesKept(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_RELEASES_KEPT;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2) throw new Error(`RELEASES_KEPT must be a whole number of at least 2 (got "${value}")`);
  return n;
}

/** Deletes all but the `keep` newest releases, never one in `protect` (the live one and its predecessor). */
export async function pruneReleases(paths: ProjectPaths, keep: number, protect: readonly (string | undefined)[]): Promise<string[]> {
  const releases = await listReleases(paths);
  const doomed = releases.slice(keep).filter((r) => !protect.includes(r.id));
  for (const r of doomed) await rm(r.dir, { recursive: true, force: true });
  return doomed.map((r) => r.id);
}
