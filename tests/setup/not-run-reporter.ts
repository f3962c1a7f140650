/**
 * Lists, after the run's summary, the suites that did not run for a missing service (tests/helpers/needs.ts): a
 * green run with suites off says so instead of looking complete.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Reporter } from "vitest/node";
import { NOT_RUN_DIR_VAR } from "../helpers/needs.ts";

export default class NotRunReporter implements Reporter {
  private dir = "";

  onInit(): void {
    // Set before the test workers start, so that they inherit it.
    this.dir = mkdtempSync(join(tmpdir(), "workyard-not-run-"));
    process.env[NOT_RUN_DIR_VAR] = this.dir;
  }

  onTestRunEnd(): void {
    const lines = new Set(readdirSync(this.dir).flatMap((f) => readFileSync(join(this.dir, f), "utf8").split("\n").filter(Boolean)));
    rmSync(this.dir, { recursive: true, force: true });
    if (lines.size === 0) return;
    process.stdout.write(`\n NOT RUN (${lines.size})\n${[...lines].map((l) => `   ${l}`).join("\n")}\n\n`);
  }
}
