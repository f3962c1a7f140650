import { defineConfig } from "vitest/config";
import { BESIDE_FILES, PROJECTS } from "./tests/run/tiers.ts";

/**
 * Three groups: `unit` (pure code, no services, seconds), `integration` (real workerd, PostgreSQL, PgBouncer, Redis,
 * Chromium; one file at a time) and `beside` (integration files that use much CPU and no tight timing:
 * tests/run/tiers.ts). `npm test` runs the first two in one vitest process and `beside` in another at the same time,
 * at a lower CPU priority (tests/run/both.ts); `vitest run` alone runs all three, one group after the other.
 */
const integration = {
  setupFiles: ["tests/setup/every-test-asserts.ts"],
  globalSetup: ["tests/setup/backends.ts"],
  // Integration tests start real workerd and databases: give them time, and run files one at a time on
  // this 2-core machine so timings stay sane.
  testTimeout: 30_000,
  hookTimeout: 120_000,
  fileParallelism: false,
};

export default defineConfig({
  test: {
    reporters: ["default", "./tests/setup/not-run-reporter.ts"],
    projects: [
      {
        test: {
          name: PROJECTS.unit,
          include: ["tests/unit/**/*.test.ts"],
          setupFiles: ["tests/setup/every-test-asserts.ts"],
        },
      },
      { test: { name: PROJECTS.integration, include: ["tests/integration/**/*.test.ts"], exclude: BESIDE_FILES, ...integration } },
      { test: { name: PROJECTS.beside, include: BESIDE_FILES, ...integration } },
    ],
  },
});
