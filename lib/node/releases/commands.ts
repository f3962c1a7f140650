/**
 * What `npm run deploy`, `npm run rollback` and `npm run releases` do, as functions the scripts and the tests
 * call: deploy builds the release here, then asks the running supervisor (through its control endpoint) to
 * migrate and switch to it; rollback asks it to switch back (to the release's code and the workerd it keeps);
 * releases lists the release folders.
 */
import { build, BuildError } from "../build/build.ts";
import { controlRequest, readControlInfo } from "../control/control.ts";
import type { ControlInfo } from "../control/control.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { describeFailure, UserError } from "../common/user-error.ts";
import { unsetEnvWarnings } from "../build/env-reads.ts";
import { queueWarnings } from "../queues/config.ts";
import { deployedRelease, listReleases, previousRelease, readHistory } from "./history.ts";
import type { SwitchResult } from "./switch.ts";

async function running(paths: ProjectPaths): Promise<ControlInfo> {
  try {
    return await readControlInfo(paths.controlInfo);
  } catch (err) {
    throw new UserError(`${(err as Error).message}. Deploys switch a running supervisor.`, { cause: err });
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function describe(result: SwitchResult, how: string): string[] {
  const lines: string[] = [];
  if (result.migrations.length > 0) lines.push(`migrations applied: ${result.migrations.join(", ")}`);
  if (result.unchanged) lines.push(`release ${result.live} was already live; nothing to switch`);
  else
    lines.push(
      `${how}: release ${result.live} is live on ${result.processes} workerd process${result.processes === 1 ? "" : "es"} (was ${result.from}; switched in ${seconds(result.ms)})`,
    );
  if (result.previous) lines.push(`npm run rollback returns to ${result.previous}`);
  if (result.pruned.length > 0) lines.push(`removed old releases: ${result.pruned.join(", ")}`);
  return lines;
}

/** Builds the sources into a release and switches the running supervisor to it. */
export async function deploy(paths: ProjectPaths, log: (line: string) => void): Promise<SwitchResult> {
  const control = await running(paths);
  log("building...");
  let built;
  try {
    built = await build(paths, { log });
  } catch (err) {
    const why = err instanceof BuildError ? err.message : `The build failed: ${describeFailure(err)}`;
    throw new UserError(`${why}\n\nNothing was deployed; the live release keeps serving.`, { cause: err });
  }
  log(
    `${built.reused ? "sources unchanged: release" : "built release"} ${built.manifest.id}${built.reused ? "" : ` in ${seconds(built.ms)}`}`,
  );
  for (const line of [...unsetEnvWarnings(built.manifest.functions), ...queueWarnings(built.manifest.functions)]) log(line);
  log("migrating, starting the new processes, waiting for them to be ready, draining the old ones...");
  const result = await controlRequest<SwitchResult>(control, "POST", "/deploy", { release: built.manifest.id });
  for (const line of describe(result, "deployed")) log(line);
  return result;
}

/** Switches the running supervisor back to the previous release (or to `release`). */
export async function rollback(paths: ProjectPaths, log: (line: string) => void, release?: string): Promise<SwitchResult> {
  const control = await running(paths);
  const result = await controlRequest<SwitchResult>(control, "POST", "/rollback", release ? { release } : {});
  for (const line of describe(result, "rolled back")) log(line);
  return result;
}

/** The release folders, newest first, marking the live one and the one rollback returns to. */
export async function releasesTable(paths: ProjectPaths): Promise<string> {
  const releases = await listReleases(paths);
  if (releases.length === 0) return "no releases yet: npm run build or npm run deploy makes one";
  let live: string | undefined;
  const control = await readControlInfo(paths.controlInfo).catch(() => undefined);
  if (control) live = (await controlRequest<{ release: string }>(control, "GET", "/status").catch(() => undefined))?.release;
  const history = await readHistory(paths);
  live ??= await deployedRelease(paths);
  const previous = live ? previousRelease(history, live) : undefined;
  const rows = releases.map((r) => {
    const git = r.manifest.git;
    const commit = git ? `${git.commit.slice(0, 10)}${git.dirty ? "+dirty" : ""}` : "-";
    const mark = r.id === live ? (control ? "live" : "deployed (not running)") : r.id === previous ? "previous (npm run rollback)" : "";
    const workerd = r.manifest.runtime?.workerd ?? "(installed)";
    return [
      r.id === live ? "*" : " ",
      r.id,
      commit,
      r.manifest.createdAt.replace("T", " ").replace(/\.\d+Z$/, "Z"),
      String(r.manifest.functions.length),
      workerd,
      mark,
    ];
  });
  const header = [" ", "release", "commit", "built (UTC)", "functions", "workerd", ""];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
