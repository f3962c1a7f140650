/** What `npm test <args>` runs (tests/run/both.ts): which of its two vitest processes, with which arguments. */
import { describe, expect, it } from "vitest";
import { plan } from "../../tests/run/both.ts";

const FILES = ["tests/unit/a.test.ts", "tests/integration/auth.test.ts", "tests/integration/conformance.test.ts"];
const MAIN = ["--project", "unit", "--project", "integration"];
const BESIDE = ["--project", "beside"];

describe("npm test's plan", () => {
  it("runs both processes with no arguments, or with a name filter", () => {
    expect(plan([], FILES)).toEqual({ main: MAIN, beside: BESIDE });
    expect(plan(["-t", "rate limit"], FILES)).toEqual({ main: [...MAIN, "-t", "rate limit"], beside: [...BESIDE, "-t", "rate limit"] });
  });

  it("runs only the process that has the files a filter names", () => {
    expect(plan(["tests/integration/auth.test.ts"], FILES)).toEqual({ main: [...MAIN, "tests/integration/auth.test.ts"] });
    expect(plan(["conformance"], FILES)).toEqual({ beside: [...BESIDE, "conformance"] });
    expect(plan(["integration/"], FILES)).toEqual({ main: [...MAIN, "integration/"], beside: [...BESIDE, "integration/"] });
  });

  it("lets vitest fail on a filter that matches no file (no --passWithNoTests)", () => {
    expect(plan(["tests/integration/conformnce.test.ts"], FILES)).toEqual({ main: [...MAIN, "tests/integration/conformnce.test.ts"] });
  });

  it("runs one process as given for --project, --coverage, --outputFile and --reporter", () => {
    expect(plan(["--project", "unit"], FILES)).toEqual({ main: ["--project", "unit"] });
    expect(plan(["--project=beside"], FILES)).toEqual({ main: ["--project=beside"] });
    expect(plan(["--reporter=junit", "--outputFile", "out.xml"], FILES)).toEqual({ main: ["--reporter=junit", "--outputFile", "out.xml"] });
  });

  it("answers --help itself", () => {
    expect(plan(["--help"], FILES)).toEqual({ help: true });
  });
});
