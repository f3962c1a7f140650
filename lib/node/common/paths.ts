/** Where the project's files are, and where generated files go (all under .workyard/, which git ignores). */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface ProjectPaths {
  root: string;
  functions: string;
  migrations: string;
  sharedConfig: string;
  /** Generated files: releases, merged wrangler configs, embedded database. Never committed. */
  work: string;
  releases: string;
  wranglerConfigs: string;
  /** Bundles of earlier builds with what went into each, so a build runs Wrangler only where something changed. */
  bundleCache: string;
  embeddedDb: string;
  /** The in-memory Redis backend's keys, kept across restarts of `npm start` (without REDIS_URL). */
  redisMemory: string;
  logs: string;
  /** The running supervisor's control endpoint (address and token), readable by the owner only. */
  controlInfo: string;
}

/**
 * The paths of the project rooted at `given` (default: this repository; the scripts take WORKYARD_ROOT), always
 * absolute: an empty WORKYARD_ROOT is unset, and a relative one is taken from the current folder once, here, so that
 * child processes started elsewhere (Wrangler, workerd) see the same files.
 */
export function projectPaths(given?: string): ProjectPaths {
  const root = given ? resolve(given) : resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  const work = join(root, ".workyard");
  return {
    root,
    functions: join(root, "functions"),
    migrations: join(root, "migrations"),
    sharedConfig: join(root, "wrangler.toml"),
    work,
    releases: join(work, "releases"),
    wranglerConfigs: join(work, "wrangler"),
    bundleCache: join(work, "bundle-cache"),
    embeddedDb: join(work, "pglite"),
    redisMemory: join(work, "redis-memory.json"),
    logs: join(work, "logs"),
    controlInfo: join(work, "run", "control.json"),
  };
}
