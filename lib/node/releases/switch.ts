/**
 * Where a deploy or rollback switches releases in a running supervisor: migrate (a deploy), start the new release's
 * workerd processes beside the live ones on the same sockets, wait until each answers /readyz, make them live, then
 * drain and stop the old ones, record the switch in the history and prune old releases. A release that does not
 * become ready is stopped and the live one keeps serving. One switch at a time.
 */
import { join } from "node:path";
import type { BuildResult } from "../build/build.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { SwitchError } from "../control/control.ts";
import { migrateUp } from "../data/migrations.ts";
import type { Generation } from "../runtime/workerd-pool.ts";
import { previousRelease, pruneReleases, readHistory, recordActivation } from "./history.ts";
import { readManifest } from "./manifest.ts";
import type { Manifest } from "./manifest.ts";

/** A release as the supervisor serves it: built now, reused, or the deployed one. */
export interface ServedRelease extends BuildResult {
  /** True when it is the release a deploy or rollback made live (not a build of the sources at start). */
  deployed: boolean;
  /** True when the sources have changed since that deployed release was built. */
  stale: boolean;
}

/** What a deploy or rollback did. */
export interface SwitchResult {
  live: string;
  /** What a rollback now returns to. */
  previous?: string;
  from: string;
  /** True when the release was already live (a deploy still applies migrations). */
  unchanged: boolean;
  migrations: string[];
  processes: number;
  ms: number;
  /** Old releases deleted past RELEASES_KEPT. */
  pruned: string[];
}

/** What is being served: changed by a switch. */
export interface Serving {
  release: ServedRelease;
  live: Generation;
}

export interface SwitchOptions {
  paths: ProjectPaths;
  /** How many old releases to keep (RELEASES_KEPT). */
  kept: number;
  processes: number;
  /** The database, directly: migrations run there. */
  databaseUrl: string;
  serving: Serving;
  /** Starts a release's processes; resolves once they answer /readyz. */
  start(releaseDir: string, manifest: Manifest): Promise<Generation>;
  /** Told once the new release is live, before the old one drains (the collector, the scheduler). */
  onLive(releaseDir: string, manifest: Manifest): Promise<void>;
  log: (line: string) => void;
}

export interface ReleaseSwitch {
  deploy(id: string): Promise<SwitchResult>;
  /** To the named release, or the one live before this one. */
  rollback(id?: string): Promise<SwitchResult>;
  /** "deploy" or "rollback" while one runs. */
  inProgress(): string | undefined;
}

export function releaseSwitch(opts: SwitchOptions): ReleaseSwitch {
  const { paths, serving } = opts;
  let switching: string | undefined;

  const activate = async (id: string, how: "deploy" | "rollback"): Promise<SwitchResult> => {
    // A second switch is refused rather than queued: its author should look first.
    if (switching) throw new SwitchError(`A ${switching} is in progress; wait for it to finish`);
    switching = how;
    const from = serving.release.manifest.id;
    const startedAt = performance.now();
    const result = (r: Omit<SwitchResult, "from" | "processes" | "ms">): SwitchResult => ({
      ...r,
      from,
      processes: opts.processes,
      ms: performance.now() - startedAt,
    });
    try {
      const releaseDir = join(paths.releases, id);
      let manifest: Manifest;
      try {
        manifest = await readManifest(releaseDir);
      } catch (err) {
        throw new SwitchError(`No release ${id} here (${(err as Error).message}); npm run releases lists them`, { cause: err });
      }
      let migrations: string[] = [];
      if (how === "deploy") {
        try {
          migrations = await migrateUp(opts.databaseUrl, paths.migrations);
        } catch (err) {
          throw new SwitchError(`${(err as Error).message}\nRelease ${from} keeps serving.`, { cause: err });
        }
      }
      if (id === from) {
        const history = await recordActivation(paths, id, how);
        return result({ live: id, previous: previousRelease(history, id), unchanged: true, migrations, pruned: [] });
      }
      let started: Generation;
      try {
        started = await opts.start(releaseDir, manifest);
      } catch (err) {
        throw new SwitchError(`Release ${id} did not become ready: ${(err as Error).message}\nRelease ${from} keeps serving.`, {
          cause: err,
        });
      }
      const old = serving.live;
      serving.live = started;
      serving.release = { releaseDir, manifest, reused: true, ms: 0, deployed: true, stale: false };
      opts.log(
        `${how}: release ${id} is live (${opts.processes} workerd process${opts.processes === 1 ? "" : "es"}); draining release ${from}`,
      );
      await opts.onLive(releaseDir, manifest);
      await old.drainAndStop();
      const previous = previousRelease(await recordActivation(paths, id, how), id);
      const pruned = await pruneReleases(paths, opts.kept, [id, previous, from]).catch((err: unknown) => {
        opts.log(`could not prune old releases: ${(err as Error).message}`);
        return [];
      });
      return result({ live: id, previous, unchanged: false, migrations, pruned });
    } finally {
      switching = undefined;
    }
  };

  return {
    deploy: (id) => activate(id, "deploy"),
    async rollback(id) {
      const current = serving.release.manifest.id;
      const target = id ?? previousRelease(await readHistory(paths), current);
      if (!target) throw new SwitchError(`Nothing to roll back to: release ${current} is the only one that was live here`);
      return activate(target, "rollback");
    },
    inProgress: () => switching,
  };
}
