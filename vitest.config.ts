import { defineConfig } from "vitest/config";

/**
 * Two groups: `unit` (pure code, no services, seconds) and `integration` (real workerd, PostgreSQL, PgBouncer,
 * Redis, Chromium). `npm test` runs both, `npm run test:unit` the first alone.
 */
export default defineConfig({
  test: {
    reporters: ["default", "./tests/setup/not-run-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["tests/unit/**/*.test.ts"],
          setupFiles: ["tests/setup/every-test-asserts.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["tests/integration/**/*.test.ts"],
          setupFiles: ["tests/setup/every-test-asserts.ts"],
          globalSetup: ["tests/setup/backends.ts"],
          // Integration tests start real workerd and databases: give them time, and run files one at a time on
          // this 2-core machine so timings stay sane.
          testTimeout: 30_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
