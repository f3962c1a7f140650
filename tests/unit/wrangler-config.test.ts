import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bindingName, discoverFunctions } from "../../lib/node/build/functions.ts";
import { ConfigError, mergeConfig, readFunctionConfig, readSharedConfig } from "../../lib/node/build/wrangler-config.ts";
import { mkdir } from "node:fs/promises";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "workyard-config-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, text);
  return path;
}

describe("wrangler.toml", () => {
  it("merges a function's settings over the shared ones", async () => {
    const shared = await readSharedConfig(
      await file(
        "wrangler.toml",
        'compatibility_date = "2026-01-01"\ncompatibility_flags = ["nodejs_compat"]\nkeep_names = false\n[vars]\nA = "shared"\nB = "shared"\n[secrets]\nrequired = ["S1"]\n',
      ),
    );
    const own = await readFunctionConfig(
      await file(
        "fn.toml",
        'compatibility_flags = ["nodejs_compat", "extra"]\n[vars]\nB = "own"\nN = 3\n[secrets]\nrequired = ["S1", "S2"]\n[triggers]\ncrons = ["*/5 * * * *"]\n[workyard]\ntimeout_ms = 1000\n',
      ),
    );
    expect(mergeConfig("fn", "/x/index.ts", shared, own)).toEqual({
      name: "fn",
      main: "/x/index.ts",
      compatibility_date: "2026-01-01",
      compatibility_flags: ["nodejs_compat", "extra"],
      minify: true,
      keep_names: false,
      upload_source_maps: true,
      vars: { A: "shared", B: "own", N: 3 },
      secrets: { required: ["S1", "S2"] },
      triggers: { crons: ["*/5 * * * *"] },
    });
  });

  it("treats a missing function config as empty, and a missing shared one as an error that says what it is for", async () => {
    expect(await readFunctionConfig(join(dir, "none.toml"))).toEqual({});
    await expect(readSharedConfig(join(dir, "none.toml"))).rejects.toThrow(/compatibility date/);
  });

  it("names unsupported keys and bad values, all at once", async () => {
    const path = await file("bad.toml", 'compatibility_date = "soon"\nkv_namespaces = []\n[vars]\nOK = "x"\n');
    const err = await readFunctionConfig(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/kv_namespaces: not supported here/);
    expect((err as Error).message).toMatch(/compatibility_date: a date like "2026-04-20"/);
  });

  it("reports TOML syntax errors with the file", async () => {
    const path = await file("broken.toml", "[vars\nA = 1\n");
    await expect(readFunctionConfig(path)).rejects.toThrow(/broken\.toml is not valid TOML/);
  });
});

describe("function discovery", () => {
  it("finds folders with an entry file, in order, and skips the rest", async () => {
    await file("wrangler.toml", 'compatibility_date = "2026-01-01"\n');
    await file("functions/b-two/index.ts", "export default {}");
    await file("functions/a-one/index.js", "export default {}");
    await file("functions/notes/README.md", "not a function");
    const found = await discoverFunctions(join(dir, "functions"), join(dir, "wrangler.toml"));
    expect(found.map((f) => f.name)).toEqual(["a-one", "b-two"]);
    expect(bindingName("b-two")).toBe("FN_B_TWO");
  });

  it("reads [[services]] and [build], and refuses a service that is not a function here", async () => {
    await file("wrangler.toml", 'compatibility_date = "2026-01-01"\n');
    await file("functions/api/index.ts", "export default {}");
    await file("functions/web/index.ts", "export default {}");
    await file(
      "functions/web/wrangler.toml",
      '[build]\ncommand = "vite build"\n\n[assets]\ndirectory = "./dist"\n\n[[services]]\nbinding = "API"\nservice = "api"\n',
    );
    const [, web] = await discoverFunctions(join(dir, "functions"), join(dir, "wrangler.toml"));
    expect(web?.config.services).toEqual([{ binding: "API", service: "api" }]);
    // Folders resolved against the function's; watch_dir defaults to ./src, as in Wrangler.
    expect(web?.build).toEqual({ command: "vite build", cwd: join(dir, "functions/web"), watchDirs: [join(dir, "functions/web/src")] });
    await file("functions/web/wrangler.toml", '[[services]]\nbinding = "API"\nservice = "apx"\n');
    await expect(discoverFunctions(join(dir, "functions"), join(dir, "wrangler.toml"))).rejects.toThrow(
      /functions\/web\/wrangler.toml: \[\[services\]\] API names "apx", which is not a function here \(found: api,web\)/,
    );
    await file("functions/web/wrangler.toml", '[build]\ncommand = ""\n');
    await expect(discoverFunctions(join(dir, "functions"), join(dir, "wrangler.toml"))).rejects.toThrow(
      /build.command: the command to run/,
    );
  });

  it("refuses no_nodejs_compat on a function with code (its worker records its invocations with Node.js built-ins), saying why", async () => {
    await file("wrangler.toml", 'compatibility_date = "2026-01-01"\n');
    await file("functions/api/index.ts", "export default {}");
    await file("functions/api/wrangler.toml", 'compatibility_flags = ["no_nodejs_compat"]\n');
    await expect(discoverFunctions(join(dir, "functions"), join(dir, "wrangler.toml"))).rejects.toThrow(
      /functions\/api: compatibility flag no_nodejs_compat is not supported here: .*remove the flag/,
    );
  });

  it("refuses a folder name that cannot be a URL segment, saying why", async () => {
    await file("wrangler.toml", 'compatibility_date = "2026-01-01"\n');
    await file("functions/Bad_Name/index.ts", "export default {}");
    await expect(discoverFunctions(join(dir, "functions"), join(dir, "wrangler.toml"))).rejects.toThrow(/Bad_Name: .*lowercase/);
  });
});
