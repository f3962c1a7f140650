/** What the build finds a function requires through defineEnv, read from its code without running it. */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { requiredEnv, requiredEnvNames, unsetEnv, unsetEnvAdvice } from "../../lib/node/build/env-reads.ts";

describe("requiredEnvNames", () => {
  it("reads the keys of a literal z.object, leaving out optional and defaulted ones", () => {
    const code = `const env = defineEnv(z.object({ A: z.string(), "B-x": z.string().min(1), C: z.string().optional(),
      D: z.coerce.number().int().default(3), E: z.string().nullish(), F: z.string().catch("f") }));`;
    expect(requiredEnvNames(code)).toEqual(["A", "B-x"]);
  });

  it("follows a schema held in a variable of the same module, and a namespaced defineEnv", () => {
    expect(requiredEnvNames(`const s = z.object({ TOKEN: z.string() }); const env = sdk.defineEnv(s);`)).toEqual(["TOKEN"]);
  });

  it("skips what it cannot read without running the code", () => {
    const code = `import { s } from "./schema.js"; defineEnv(s); defineEnv(z.object({ ...base, [k]: z.string() })); other(z.object({ X: z.string() }));`;
    expect(requiredEnvNames(code)).toEqual([]);
  });
});

describe("requiredEnv", () => {
  it("reads every TypeScript module of the folder, but not its tests", async () => {
    const dir = await mkdtemp(join(tmpdir(), "env-reads-"));
    try {
      await mkdir(join(dir, "lib"));
      await writeFile(
        join(dir, "index.ts"),
        `type T = { a: number };\nexport const env = defineEnv(z.object({ GREETING: z.string() }));\n`,
      );
      await writeFile(join(dir, "lib", "more.mts"), `export const e = defineEnv(z.object({ API_BASE: z.url() } as const));\n`);
      await writeFile(join(dir, "index.test.ts"), `defineEnv(z.object({ ONLY_IN_TESTS: z.string() }));\n`);
      await writeFile(join(dir, "broken.ts"), `defineEnv(z.object({ NEVER: z.string() }) this does not compile`);
      expect(await requiredEnv(dir)).toEqual(["API_BASE", "GREETING"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the examples: hello requires APP_NAME, which the top-level wrangler.toml sets", async () => {
    expect(await requiredEnv("functions/hello")).toEqual(["APP_NAME"]);
  });
});

describe("unsetEnv and its advice", () => {
  it("names what neither a var nor a declared secret sets, and where to set it", () => {
    expect(unsetEnv(["A", "B", "C"], { A: "1" }, ["B"])).toEqual(["C"]);
    const advice = unsetEnvAdvice({ name: "greet", unsetEnv: ["GREETING"] });
    expect(advice).toContain("functions/greet requires GREETING");
    expect(advice).toContain("[vars] in functions/greet/wrangler.toml");
    expect(unsetEnvAdvice({ name: "greet", unsetEnv: [] })).toBeUndefined();
    expect(unsetEnvAdvice({ name: "old" })).toBeUndefined();
  });
});
