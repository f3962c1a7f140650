/**
 * OpenAPI documents and the docs page (#20), on the real stack: every function's /<name>/openapi.json is valid
 * OpenAPI 3.1 (@readme/openapi-parser); the routes each REST app really has (Hono's own `app.routes`, from the same
 * modules the build bundles) are exactly the documented ones; requests built from the documented examples, with a
 * real signed-up user's token or an API key where the route's security asks for one, get the documented success
 * status, creates before reads before deletes; and /docs/ renders Scalar with every document in Chromium from the
 * platform's own files: no request to another host, no Content-Security-Policy violation.
 */
import { compileErrors, validate } from "@readme/openapi-parser";
import type { OpenAPIV3_1 } from "openapi-types";
import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../lib/node/data/accounts.ts";
import { appsMade } from "../../lib/sdk/app.ts";
import { launchChromium } from "../helpers/chromium.ts";
import type { Chromium } from "../helpers/chromium.ts";
import { startStack } from "../helpers/stack.ts";
import type { Stack } from "../helpers/stack.ts";

/** The functions with REST routes of their own; each must document every one. */
// The functions whose every route is documented: the REST ones, and graphql's endpoint.
const REST = ["auth", "hello", "links", "webhooks", "graphql"];
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"] as const;

type Document = OpenAPIV3_1.Document;
type Operation = OpenAPIV3_1.OperationObject;

type App = ReturnType<typeof appsMade>[number];

let stack: Stack;
const documents = new Map<string, Document>();
const apps = new Map<string, App>();

/** The app a function's module makes (the same module the build bundles), imported here in Node. */
async function appOf(fn: string): Promise<App> {
  const known = apps.get(fn);
  if (known) return known;
  const before = new Set(appsMade());
  await import(`../../functions/${fn}/index.ts`);
  const made = appsMade().filter((a) => !before.has(a));
  expect(made, `functions/${fn} makes one app`).toHaveLength(1);
  apps.set(fn, made[0] as App);
  return made[0] as App;
}

/** The zod schema a route declares for a JSON answer with this status. */
function answerSchema(
  app: App,
  method: string,
  path: string,
  status: number,
): { safeParse(v: unknown): { success: boolean; error?: unknown } } | undefined {
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type !== "route" || def.route.method !== method || def.route.path !== path) continue;
    const content = (def.route.responses[status] as { content?: Record<string, { schema?: unknown }> } | undefined)?.content;
    return content?.["application/json"]?.schema as never;
  }
  return undefined;
}

let names: string[] = [];

beforeAll(async () => {
  stack = await startStack({ apiSurface: true });
  // Every function of the release, as the gateway lists them, and each one's document.
  names = ((await stack.call("/")).body as unknown as { functions: string[] }).functions.map((f) => f.slice(1));
  for (const fn of names) {
    const r = await stack.call(`/${fn}/openapi.json`);
    if (r.status === 200) documents.set(fn, r.body as unknown as Document);
  }
});
afterAll(async () => {
  await stack?.stop();
});

/** "GET /{code}/stats" for each operation of a document. */
function documentedRoutes(doc: Document): string[] {
  return Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    METHODS.filter((m) => item?.[m]).map((m) => `${m.toUpperCase()} ${path}`),
  );
}

describe("each function's document", () => {
  it("is served at /<name>/openapi.json for every function, valid OpenAPI 3.1, with servers through the gateway", async () => {
    expect(names).toEqual(expect.arrayContaining([...REST, "docs"]));
    for (const fn of names) {
      const r = await stack.call(`/${fn}/openapi.json`);
      expect(r.status, fn).toBe(200);
      expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
      const doc = r.body as unknown as Document;
      expect(doc.openapi).toBe("3.1.0");
      expect(doc.servers).toEqual([{ url: `/${fn}`, description: `Through the gateway, under /${fn}` }]);
      // validate() dereferences in place: give it a copy.
      const result = await validate(structuredClone(doc) as never);
      expect(result.valid ? "valid" : compileErrors(result), fn).toBe("valid");
    }
    for (const fn of REST) expect(documentedRoutes(documents.get(fn) as Document).length, fn).toBeGreaterThan(0);
  });

  it("is cacheable: an ETag, and 304 for If-None-Match", async () => {
    const first = await stack.call("/links/openapi.json");
    const etag = first.res.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    expect(first.res.headers.get("cache-control")).toBe("public, max-age=60");
    const again = await stack.call("/links/openapi.json", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
  });

  it("lists every route its app has, and no route it does not have", async () => {
    for (const fn of REST) {
      const app = await appOf(fn);
      const routes = new Set(
        app.routes
          .filter((r) => r.method !== "ALL" && r.path !== "/openapi.json")
          .map((r) => `${r.method} ${r.path.replace(/:([^/]+)/g, "{$1}")}`),
      );
      expect([...routes].sort(), fn).toEqual(documentedRoutes(documents.get(fn) as Document).sort());
    }
  });
});

/** A parameter's documented example (on the parameter or its schema). */
function exampleOf(p: OpenAPIV3_1.ParameterObject): unknown {
  const schema = p.schema as OpenAPIV3_1.SchemaObject | undefined;
  return p.example ?? schema?.example ?? (schema?.examples as unknown[] | undefined)?.[0];
}

const order = { post: 0, put: 1, patch: 1, get: 2, head: 2, options: 2, delete: 3 } as const;

describe("requests built from the documented examples", () => {
  it("get the documented success status, with a real user's token or an API key where security says so", async () => {
    const email = `docs-${crypto.randomUUID()}@example.com`;
    let accessToken = "";
    let refreshToken = "";
    const apiKeys = new Map<string, string>();
    const ran: string[] = [];
    for (const fn of REST) {
      const doc = documents.get(fn) as Document;
      const operations = Object.entries(doc.paths ?? {})
        .flatMap(([path, item]) => METHODS.filter((m) => item?.[m]).map((m) => ({ path, method: m, op: item?.[m] as Operation })))
        // Creates before reads before deletes; within a method, in the order the function declares them (sign up
        // before logging in, a link before its stats). Array.prototype.sort is stable.
        .sort((a, b) => order[a.method] - order[b.method]);
      for (const { path, method, op } of operations) {
        const params = (op.parameters ?? []) as OpenAPIV3_1.ParameterObject[];
        let url = path;
        const query = new URLSearchParams();
        for (const p of params) {
          const example = exampleOf(p);
          if (p.in === "path") {
            expect(example, `${fn} ${path}: path parameter ${p.name} has an example`).toBeDefined();
            url = url.replace(`{${p.name}}`, encodeURIComponent(String(example)));
          } else if (p.in === "query" && example !== undefined) query.set(p.name, String(example));
        }
        const headers: Record<string, string> = {};
        let body: string | undefined;
        const media = (op.requestBody as OpenAPIV3_1.RequestBodyObject | undefined)?.content?.["application/json"];
        if (media) {
          expect(media.example, `${fn} ${method} ${path}: the body has an example`).toBeDefined();
          let example = media.example as Record<string, unknown>;
          // What must differ per run or comes from an earlier answer: the account's email, the refresh token.
          if ("email" in example) example = { ...example, email };
          if ("refreshToken" in example) example = { ...example, refreshToken };
          if (fn === "links" && typeof example.code === "string") await stack.sql`delete from links where code = ${example.code}`;
          body = JSON.stringify(example);
          headers["content-type"] = "application/json";
        }
        const schemes = (op.security ?? []).flatMap((s) => Object.keys(s));
        if (schemes.includes("apiKey")) {
          // A machine client, as the security allows: an API key made for this function.
          if (!apiKeys.has(fn)) apiKeys.set(fn, (await createApiKey(stack.sql, fn, "openapi test")).key);
          headers["x-api-key"] = apiKeys.get(fn) as string;
        } else if (schemes.includes("accessToken")) {
          expect(accessToken, `${fn} ${path} needs a signed-up user first`).not.toBe("");
          headers.authorization = `Bearer ${accessToken}`;
        }
        const success = Object.keys(op.responses ?? {})
          .map(Number)
          .filter((s) => s >= 200 && s < 400)
          .sort()[0];
        // The server's URL and the path, as Scalar's "Try it" builds it (/webhooks + / is /webhooks/).
        const target = `${doc.servers?.[0]?.url ?? ""}${url}${query.size > 0 ? `?${query}` : ""}`;
        const r = await stack.call(target, { method: method.toUpperCase(), headers, body });
        expect(r.status, `${method.toUpperCase()} ${target}: ${r.text.slice(0, 300)}`).toBe(success);
        const documented = (op.responses?.[String(success)] as OpenAPIV3_1.ResponseObject | undefined)?.content;
        const documentedJson = documented?.["application/json"];
        if (documentedJson) {
          // The answer matches the route's own zod schema for it, the one its document was made from.
          const schema = answerSchema(await appOf(fn), method, path, success as number);
          expect(schema, `${fn} ${method} ${path}: a schema for ${success}`).toBeDefined();
          const parsed = schema?.safeParse(r.body);
          expect(parsed?.success ? "matches" : parsed?.error, target).toBe("matches");
          expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
          // The answer has the fields the documented example has (the example is what a reader builds on).
          const example = documentedJson.example as Record<string, unknown> | undefined;
          if (example && typeof example === "object") expect(Object.keys(r.body).sort(), target).toEqual(Object.keys(example).sort());
        }
        if (documented?.["text/html"]) expect(r.res.headers.get("content-type")).toMatch(/^text\/html/);
        const answer = r.body as unknown as { accessToken?: string; refreshToken?: string };
        if (answer.accessToken) accessToken = answer.accessToken;
        if (answer.refreshToken) refreshToken = answer.refreshToken;
        ran.push(`${method.toUpperCase()} /${fn}${path}`);
      }
    }
    expect(ran.length).toBe(REST.reduce((n, fn) => n + documentedRoutes(documents.get(fn) as Document).length, 0));
  });
});

describe("the docs page", () => {
  let chrome: Chromium | undefined;
  let browser: BrowserContext;

  beforeAll(async () => {
    chrome = await launchChromium({ width: 1400, height: 1000 });
    browser = chrome.browser;
  });
  afterAll(async () => {
    await chrome?.close();
  });

  it("shows every function's document with Scalar from the platform's own files: no other host, no CSP violation", async () => {
    const page = await browser.newPage();
    const origin = new URL(stack.sup.url).origin;
    const elsewhere: string[] = [];
    const problems: string[] = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(origin) && !req.url().startsWith("data:") && !req.url().startsWith("blob:")) elsewhere.push(req.url());
    });
    page.on("response", (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    page.on("console", (msg) => {
      if (msg.type() === "error" || /Content.Security.Policy/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
    });
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    // Every violation the page reports, with where it came from (the test runs in Node: the page's code is text).
    await page.addInitScript({
      content: `document.addEventListener("securitypolicyviolation", (e) => {
        (window.__csp ??= []).push(e.violatedDirective + " " + e.blockedURI + " at " + e.sourceFile + ":" + e.lineNumber + ":" + e.columnNumber);
      });`,
    });
    const violations = () => page.evaluate<string[]>("window.__csp ?? []");
    const res = await page.goto(`${stack.sup.url}/docs/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-security-policy"]).toContain("script-src 'self'");
    // (A locator, not waitForFunction with an expression: Playwright compiles that with new Function, which the policy refuses.)
    const shown = await page
      .locator("html[data-sources]")
      .waitFor({ state: "attached", timeout: 20_000 })
      .catch((err: unknown) => err);
    expect({ csp: await violations(), problems }).toEqual({ csp: [], problems: [] });
    expect(shown).not.toBeInstanceOf(Error);
    expect((await page.locator("html").getAttribute("data-sources"))?.split(",").sort()).toEqual([...REST].sort());
    // Scalar rendered the first document's operations (auth's).
    await page.getByText("Create an account and sign in").first().waitFor({ timeout: 20_000 });
    // None of Scalar's hosted tools (they would call scalar.com).
    expect(await page.getByText(/Deploy API|Ask AI|Generate SDK/).count()).toBe(0);
    await page.waitForTimeout(1000);
    // Each document, chosen by its slug (Scalar's ?api=), shows its own operations.
    for (const fn of REST) {
      await page.goto(`${stack.sup.url}/docs/?api=${fn}`);
      const first = Object.values((documents.get(fn) as Document).paths ?? {}).flatMap((item) =>
        METHODS.map((m) => item?.[m]?.summary).filter(Boolean),
      )[0];
      await page
        .getByText(first as string)
        .first()
        .waitFor({ timeout: 20_000 });
    }
    if (process.env.OPENAPI_SCREENSHOT) await page.screenshot({ path: process.env.OPENAPI_SCREENSHOT, fullPage: false });
    expect({ elsewhere, csp: await violations(), problems }).toEqual({ elsewhere: [], csp: [], problems: [] });
    await page.close();
  });

  it("serves Scalar's bundle gzipped and cacheable for good under its versioned URL", async () => {
    const html = (await stack.call("/docs")).text;
    const src = /src="(\/docs\/scalar\.js\?v=[0-9a-f]+)"/.exec(html)?.[1];
    expect(src).toBeDefined();
    const r = await fetch(`${stack.sup.url}${src}`, { headers: { "accept-encoding": "gzip" } });
    expect(r.headers.get("content-encoding")).toBe("gzip");
    expect(r.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await r.text()).length).toBeGreaterThan(1_000_000);
  });
});
