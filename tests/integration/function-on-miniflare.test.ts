/**
 * A function's own tests, in-process on miniflare with real bindings (lib/node/dev/testing.ts): no gateway and
 * no supervisor, a real database. This is how a function author tests one function by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { functionOnMiniflare } from "../../lib/node/dev/testing.ts";
import type { FunctionUnderTest } from "../../lib/node/dev/testing.ts";
import { bearer, mintToken, testJwtSecret } from "../helpers/auth.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";

describe("hello on miniflare", () => {
  let hello: FunctionUnderTest;
  beforeAll(async () => {
    hello = await functionOnMiniflare("hello", { bindings: { GREETING: "Howdy" } });
  });
  afterAll(() => hello?.dispose());

  it("answers with its vars and the bindings the test gives", async () => {
    const res = await hello.fetch("/greet/ada");
    expect(await res.json()).toEqual({ message: "Howdy, ada!" });
  });

  it("answers the standard errors", async () => {
    const res = await hello.fetch("/echo", { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "bad_request", requestId: expect.any(String) } });
  });
});

describe("links on miniflare, with a real database", () => {
  let db: FreshDatabase;
  let links: FunctionUnderTest;
  const jwtSecret = testJwtSecret();
  beforeAll(async () => {
    db = await freshDatabase();
    await migrateUp(db.url, projectPaths().migrations);
    links = await functionOnMiniflare("links", { bindings: { DATABASE_URL: db.url, AUTH_JWT_SECRET: jwtSecret } });
  });
  afterAll(async () => {
    await links?.dispose();
    await db?.dispose();
  });

  it("creates and redirects (no Redis bound: the cache is bypassed)", async () => {
    const headers = { "content-type": "application/json", ...bearer(await mintToken(jwtSecret)) };
    const created = await links.fetch("/", {
      method: "POST",
      headers,
      body: JSON.stringify({ url: "https://example.com/mf", code: "on-mf" }),
    });
    expect(created.status).toBe(201);
    const redirect = await links.fetch("/on-mf");
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("https://example.com/mf");
    expect(redirect.headers.get("x-cache")).toBe("bypass");
  });

  it("runs its crons", async () => {
    expect(await links.scheduled("*/5 * * * *")).toMatchObject({ outcome: "ok" });
    expect(await links.scheduled("0 0 1 1 *")).toMatchObject({ outcome: "exception" }); // no task for that cron
  });
});
