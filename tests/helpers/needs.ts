/**
 * A suite that needs something the machine may lack (a real PostgreSQL, PgBouncer, redis-server): elsewhere it is
 * skipped and the run's summary lists it under NOT RUN; under CI=true it fails instead, so that a green CI run
 * means every suite ran.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";

/** Where the suites that did not run are recorded for the summary (tests/setup/not-run-reporter.ts sets it). */
export const NOT_RUN_DIR_VAR = "WORKYARD_NOT_RUN_DIR";

export interface Need {
  /** The suite, as the summary names it. */
  suite: string;
  /** What it needs, e.g. "a real PostgreSQL". */
  service: string;
  available: boolean;
  /** How to get it. */
  fix: string;
}

/** True when the suite can run; false (recorded as NOT RUN) when it cannot; throws under CI=true when it cannot. */
export function needs({ suite, service, available, fix }: Need): boolean {
  if (available) return true;
  const line = `${suite}: needs ${service} (${fix})`;
  if (process.env.CI === "true") throw new Error(`NOT RUN under CI=true is a failure. ${line}`);
  const dir = process.env[NOT_RUN_DIR_VAR];
  if (dir) appendFileSync(join(dir, `${process.pid}.txt`), `${line}\n`);
  else console.warn(`NOT RUN: ${line}`);
  return false;
}
