/**
 * Static assets served by workerd beside a function (issue #22): a fixture with Wrangler's [assets] (public/, a
 * single-page app's fallback, run_worker_first for /api/*) behind the gateway as npm start serves it.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy, rollback } from "../../lib/node/releases/commands.ts";
import { launchChromium, recordWire, watchCsp } from "../helpers/chromium.ts";
import { rawRequest } from "../helpers/raw-http.ts";
import { startStack } from "../helpers/stack.ts";
import type { Stack } from "../helpers/stack.ts";

let stack: Stack;
let base: string;
beforeAll(async () => {
  stack = await startStack({ fixtures: ["assets-probe", "static-site"] });
  base = `${stack.sup.url}/assets-probe`;
});
afterAll(() => stack?.stop());

const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  fetch(`${base}${path}`, { method, headers, redirect: "manual" });

/** A page load as a browser makes it (Sec-Fetch-Mode: navigate, which fetch() replaces with "cors"): status, Location, body. */
async function navigate(path: string, method = "GET"): Promise<{ status: number; location: string | undefined; body: string }> {
  const head = `${method} /assets-probe${path} HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Mode: navigate\r\nAccept: text/html`;
  const answer = await rawRequest(Number(new URL(stack.sup.url).port), head);
  return { status: answer.status, location: answer.headers.location, body: answer.body };
}

describe("static assets", () => {
  it("serves files with their type, ETag, caching and security headers, and the request id", async () => {
    const page = await get("/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await page.text()).toContain("The single page");
    expect(page.headers.get("etag")).toMatch(/^"[0-9a-f]{32}"$/);
    expect(page.headers.get("cache-control")).toBe("public, max-age=0, must-revalidate");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("x-request-id")).toBeTruthy();
    const script = await get("/assets/app-BXk2a9Qz.js", { "accept-encoding": "identity" });
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await script.text()).length).toBe(12020);
    const png = await get("/assets/logo.png");
    expect(png.headers.get("content-type")).toBe("image/png");
    expect(png.headers.get("cache-control")).toBe("public, max-age=0, must-revalidate");
    expect(png.headers.get("content-encoding")).toBeNull();
  });

  it("sends the brotli or gzip copy the client takes, and the file itself for a range or when none is taken", async () => {
    const path = "/assets/app-BXk2a9Qz.js";
    const br = await get(path, { "accept-encoding": "gzip, br" });
    expect(br.headers.get("content-encoding")).toBe("br");
    expect(br.headers.get("vary")).toBe("Accept-Encoding");
    expect((await br.text()).length).toBe(12020); // fetch decodes it
    const gz = await get(path, { "accept-encoding": "gzip, br;q=0" });
    expect(gz.headers.get("content-encoding")).toBe("gzip");
    expect(Number(gz.headers.get("content-length"))).toBeLessThan(12020 / 2);
    await gz.body?.cancel();
    const plain = await get(path, { "accept-encoding": "identity" });
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(plain.headers.get("content-length")).toBe("12020");
    expect(plain.headers.get("accept-ranges")).toBe("bytes");
    await plain.body?.cancel();
    const part = await get(path, { range: "bytes=3-12", "accept-encoding": "br" });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 3-12/12020");
    expect(part.headers.get("content-encoding")).toBeNull();
    expect(await part.text()).toBe("a script b");
    // A small text is not worth compressing: no copy, no Vary.
    const robots = await get("/robots.txt", { "accept-encoding": "br, gzip" });
    expect(robots.headers.get("content-encoding")).toBeNull();
    expect(robots.headers.get("vary")).toBeNull();
    expect(await robots.text()).toBe("plain text, not fingerprinted\n");
  });

  it("answers 304 to a reload with the ETag, and HEAD with the headers alone", async () => {
    const first = await get("/about");
    const etag = first.headers.get("etag") ?? "";
    await first.body?.cancel();
    for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const again = await get("/about", { "if-none-match": ifNoneMatch });
      expect(again.status, ifNoneMatch).toBe(304);
      expect(again.headers.get("etag")).toBe(etag);
      expect(await again.text()).toBe("");
    }
    expect((await get("/about", { "if-none-match": '"not-it"' })).status).toBe(200);
    const head = await get("/assets/app-BXk2a9Qz.js", { "accept-encoding": "identity" }, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("12020");
    expect(await head.text()).toBe("");
  });

  it("maps paths to HTML files as Cloudflare does (auto-trailing-slash), with 307s to the one path each is served at", async () => {
    expect(await (await get("/about")).text()).toContain("About page");
    const cases: [string, number, string | null][] = [
      ["/about.html", 307, "/assets-probe/about"],
      ["/docs", 307, "/assets-probe/docs/"],
      ["/docs/index.html", 307, "/assets-probe/docs/"],
      ["/docs/", 200, null],
      ["/blog/post", 200, null],
      ["/blog/post.html?x=1", 307, "/assets-probe/blog/post?x=1"],
      ["/about/", 307, "/assets-probe/about"],
    ];
    for (const [path, status, location] of cases) {
      const res = await navigate(path);
      expect({ path, status: res.status, location: res.location ?? null }).toEqual({ path, status, location });
    }
  });

  it("gives a page load with no file the single page, and a call with no file to the code", async () => {
    const navigation = await navigate("/some/client/route");
    expect(navigation.status).toBe(200);
    expect(navigation.body).toContain("The single page");
    // A form posted as a page load to a path with no file: the single page's intent, and POST is not for assets.
    expect((await navigate("/session", "POST")).status).toBe(405);
    // Not a navigation: the function's code (its route, or its JSON 404).
    expect(await (await get("/data.json")).json()).toEqual({ from: "code, for a path with no file" });
    const missing = await get("/no/such/file.js");
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/^application\/json/);
    await missing.body?.cancel();
    // An asset path always answers with the asset, even where the code has a route.
    const index = await navigate("/index.html");
    expect(index.status).toBe(307);
    expect(index.location).toBe("/assets-probe/");
  });

  it("runs the code first for run_worker_first's paths, except those a ! pattern excludes", async () => {
    expect(await (await get("/api/hello")).json()).toEqual({ from: "code" });
    const excluded = await get("/api/static/info.json");
    expect(excluded.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await excluded.json()).toEqual({ static: true });
  });

  it("lets the code serve files through its assets binding (env.ASSETS.fetch), with the same rules", async () => {
    const about = await get("/api/about");
    expect(about.status, stack.logs.slice(-15).join("\n")).toBe(200);
    expect(about.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await about.text()).toContain("About page");
    // The binding applies not_found_handling to any path: here the single page.
    const missing = await get("/api/missing");
    expect(missing.status).toBe(200);
    expect(await missing.text()).toContain("The single page");
  });

  it("refuses methods other than GET and HEAD on an asset (405), and passes them to the code elsewhere", async () => {
    const post = await fetch(`${base}/about`, { method: "POST", body: "x".repeat(5000), redirect: "manual" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    const session = await fetch(`${base}/session`, { method: "POST", redirect: "manual" });
    expect(session.status).toBe(303);
  });

  it("never serves a file outside the folder, whatever the path's spelling", async () => {
    for (const path of [
      "/assets-probe/../assets-probe/wrangler.toml",
      "/assets-probe/%2e%2e/wrangler.toml",
      "/assets-probe/%2e%2e%2fwrangler.toml",
      "/assets-probe/assets/..%2f..%2fwrangler.toml",
      "/assets-probe/..%5c..%5cwrangler.toml",
      "/assets-probe/index.ts",
      "/assets-probe/assets/",
      "/assets-probe/%00",
      "/assets-probe/%ff%fe",
    ]) {
      const { status, raw: answer } = await rawRequest(Number(new URL(stack.sup.url).port), `GET ${path} HTTP/1.1\r\nHost: localhost`);
      expect([404, 400, 307], path).toContain(status);
      expect(answer, path).not.toContain("directory =");
      expect(answer, path).not.toContain("createApp");
      expect(answer, path).not.toContain('"type":"file"');
    }
  });

  it("loads as a page in Chromium under its own CSP (script, module import, stylesheet), and revalidates on reload", async () => {
    const chrome = await launchChromium();
    try {
      const page = await chrome.browser.newPage();
      const problems: string[] = [];
      page.on("response", (r) => {
        if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
      });
      page.on("console", (msg) => {
        if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
      });
      page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
      const cspViolations = await watchCsp(page);
      await page.goto(`${base}/`);
      await page.locator("body[data-ran=yes]").waitFor({ timeout: 10_000 });
      expect(await page.evaluate("getComputedStyle(document.body).color")).toBe("rgb(20, 40, 60)");
      expect({ csp: await cspViolations(), problems }).toEqual({ csp: [], problems: [] });
      // A reload asks again for the page and gets a 304 (Playwright reports the cached answer's 200; the protocol's
      // raw response says what came over the wire).
      const wire = await recordWire(page);
      await page.reload();
      await page.locator("body[data-ran=yes]").waitFor({ timeout: 10_000 });
      await expect.poll(() => wire.filter((w) => w.endsWith(" /assets-probe/")), { timeout: 5000 }).toEqual(["304 /assets-probe/"]);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await chrome.close();
    }
  });

  it("serves a function of assets alone (no index.ts): its 404 page for any path with no file, and no code for Cloudflare", async () => {
    const home = await stack.call("/static-site/");
    expect({ status: home.status, text: home.text }).toMatchObject({
      status: 200,
      text: expect.stringContaining("the static site's home"),
    });
    expect((await stack.call("/static-site/guide/")).text).toContain("the guide");
    // Without code, not-found handling applies to every request, not to page loads only.
    const missing = await stack.call("/static-site/no/such/file.js");
    expect({ status: missing.status, text: missing.text }).toMatchObject({
      status: 404,
      text: expect.stringContaining("the static site's 404 page"),
    });
    expect((await stack.call("/static-site/guide/", { method: "POST" })).status).toBe(405);
    // Its config for Cloudflare has no main: an assets-only Worker, as `wrangler deploy` takes the folder.
    const config = JSON.parse(await readFile(join(stack.project.paths.wranglerConfigs, "static-site.json"), "utf8")) as Record<
      string,
      unknown
    >;
    expect({ main: config.main, assets: (config.assets as { directory?: string }).directory }).toEqual({
      main: undefined,
      assets: join(stack.project.paths.functions, "static-site/public"),
    });
  });

  // Last: it changes the project's files.
  it("switches files with the code on a deploy, and back on a rollback", async () => {
    const before = await get("/about");
    const oldTag = before.headers.get("etag");
    expect(await before.text()).toContain("About page");
    const file = join(stack.project.paths.functions, "assets-probe/public/about.html");
    const original = await readFile(file, "utf8");
    await writeFile(file, original.replace("About page", "About page, second release"));
    const log = () => {};
    const deployed = await deploy(stack.project.paths, log);
    expect(deployed.unchanged).toBe(false);
    const after = await get("/about");
    expect(await after.text()).toContain("About page, second release");
    expect(after.headers.get("etag")).not.toBe(oldTag);
    // A client holding the old ETag gets the new file, not a 304.
    expect((await get("/about", { "if-none-match": oldTag ?? "" })).status).toBe(200);
    await rollback(stack.project.paths, log);
    const back = await get("/about");
    expect(back.headers.get("etag")).toBe(oldTag);
    expect(await back.text()).not.toContain("second release");
  }, 120_000);
});
