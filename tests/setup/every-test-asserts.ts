/**
 * A test that checks nothing cannot fail: each one must make at least one assertion (postgres.js's harness refuses a
 * test that returns nothing, for the same reason). A concurrent test asserts with its own `expect` (the context's, as
 * Vitest asks of concurrent tests): the global one cannot tell which of them an assertion belongs to.
 */
import { beforeEach, expect } from "vitest";

beforeEach((context) => {
  if (context.task.concurrent) context.expect.hasAssertions();
  else expect.hasAssertions();
});
