/**
 * Which test files run where. `npm test` runs two vitest processes at once (tests/run/both.ts): the unit tier and the
 * integration tier, one file at a time, as before; and beside them, at a lower CPU priority, the files that use much
 * CPU and no tight timing (their bounds are seconds: a cron within 10 s of its minute, a stop or a reload within
 * 10-15 s, a refusal within 2 s): other runtimes started side by side, Wrangler builds, every command's --help, the
 * API surface's documents and GraphQL, commands opening the embedded database while it serves, the dev server's
 * reloads. They spend most of their time starting processes, which the integration tier's waits (outages, deadlines,
 * cron seconds) leave room for. Niced, they take CPU mostly when the timing tests leave it (PostgreSQL's work and the
 * disk are shared alike).
 */
export const BESIDE_FILES = [
  "tests/integration/conformance.test.ts",
  "tests/integration/deno.test.ts",
  "tests/integration/readme-function.test.ts",
  "tests/integration/build.test.ts",
  "tests/integration/help.test.ts",
  "tests/integration/openapi.test.ts",
  "tests/integration/graphql.test.ts",
  "tests/integration/accounts-while-serving.test.ts",
  "tests/integration/dev.test.ts",
  "tests/integration/front-end.test.ts",
];

/** The vitest projects (vitest.config.ts): `beside` runs in a process of its own under `npm test`. */
export const PROJECTS = { unit: "unit", integration: "integration", beside: "beside" } as const;
