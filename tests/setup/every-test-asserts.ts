/**
 * A test that checks nothing cannot fail: each one must make at least one assertion (postgres.js's harness refuses a
 * test that returns nothing, for the same reason).
 */
import { beforeEach, expect } from "vitest";

beforeEach(() => {
  expect.hasAssertions();
});
