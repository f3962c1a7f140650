import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    globalSetup: ["tests/setup/backends.ts"],
    // Integration tests start real workerd and databases: give them time, and run files one at a time on
    // this 2-core machine so timings stay sane.
    testTimeout: 30_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
