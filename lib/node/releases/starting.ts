/**
 * Which release `npm start` serves, and what it says about it. After a deploy or rollback, the release that made live
 * (so a restart, a reboot or a crash serves what was deployed, never whatever the sources are now), unless the start
 * is told to serve the sources (`npm start -- --sources`, or WORKYARD_SERVE=sources); otherwise a build of the
 * sources, reused when they are unchanged. When a deployed release is served and the sources differ, the notice says
 * so plainly, names the functions that differ in being there or not, and gives both ways forward.
 */
import { join } from "node:path";
import { z } from "zod";
import { build, releaseId, sourceHash } from "../build/build.ts";
import { discoverFunctions } from "../build/functions.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { UserError } from "../common/user-error.ts";
import { deployedRelease, readHistory } from "./history.ts";
import { readManifest } from "./manifest.ts";
import type { ServedRelease } from "./switch.ts";

/** What `npm start` serves: the deployed release when there is one (the default), or always the sources. */
export type ServeChoice = "deployed" | "sources";

const serveChoice = z.enum(["deployed", "sources"]);

/** WORKYARD_SERVE, checked; `--sources` wins over it. */
export function serveChoiceOf(env: NodeJS.ProcessEnv, sourcesFlag = false): ServeChoice {
  if (sourcesFlag) return "sources";
  const parsed = serveChoice.safeParse(env.WORKYARD_SERVE ?? "deployed");
  if (!parsed.success) throw new UserError(`WORKYARD_SERVE is "${env.WORKYARD_SERVE}": set it to deployed (the default) or sources`);
  return parsed.data;
}

/**
 * The release to start with, the lines that tell the operator which and why, and how its start goes into the history
 * ("sources" when the sources were served over a deployed release: rollback passes over it).
 */
export async function startingRelease(
  paths: ProjectPaths,
  choice: ServeChoice,
  log?: (line: string) => void,
): Promise<{ release: ServedRelease; notice: string[]; activation: "start" | "sources" }> {
  const started = performance.now();
  const deployed = await deployedRelease(paths);
  if (!deployed || choice === "sources") {
    const built = await build(paths, { log });
    const what = `${built.reused ? "sources unchanged, using" : "built"} release ${built.manifest.id} (${Math.round(built.ms)} ms)`;
    const passedOver =
      deployed && deployed !== built.manifest.id ? [`  serving the sources, not the deployed release ${deployed} (--sources)`] : [];
    return {
      release: { ...built, deployed: false, stale: false },
      notice: [what, ...passedOver],
      activation: deployed ? "sources" : "start",
    };
  }
  const releaseDir = join(paths.releases, deployed);
  const manifest = await readManifest(releaseDir);
  const stale = releaseId(await sourceHash(paths)) !== deployed;
  const release: ServedRelease = { releaseDir, manifest, reused: true, ms: performance.now() - started, deployed: true, stale };
  const at = (await readHistory(paths)).findLast((a) => a.id === deployed && (a.how === "deploy" || a.how === "rollback"));
  const how = at ? ` (${at.how === "deploy" ? "deployed" : "rolled back to"} ${at.at.slice(0, 16).replace("T", " ")} UTC)` : "";
  if (!stale) return { release, notice: [`serving the deployed release ${deployed}${how}; the sources are the same`], activation: "start" };
  return {
    release,
    notice: [
      `serving the deployed release ${deployed}${how}, NOT the sources: they have changed since`,
      ...(await differences(paths, release)),
      "  npm run deploy ships the sources; npm start -- --sources serves them without deploying",
    ],
    activation: "start",
  };
}

/** The functions that are in the sources but not served, and the other way round. */
async function differences(paths: ProjectPaths, release: ServedRelease): Promise<string[]> {
  const sources = await discoverFunctions(paths.functions, paths.sharedConfig).then(
    (fns) => fns.map((f) => f.name),
    () => undefined,
  );
  if (!sources) return [];
  const served = release.manifest.functions.map((f) => f.name);
  const added = sources.filter((n) => !served.includes(n));
  const removed = served.filter((n) => !sources.includes(n));
  return [
    ...(added.length ? [`  in the sources but not served until deployed: ${added.join(", ")}`] : []),
    ...(removed.length ? [`  served but no longer in the sources: ${removed.join(", ")}`] : []),
  ];
}
