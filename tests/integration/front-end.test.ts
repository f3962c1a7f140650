/**
 * The links front end (functions/app) in headless Chromium, on the whole stack as `npm start` serves it: built by its
 * [build] command (Vite), rendered by the function, hydrated by React. Walked twice: with JavaScript on (actions by
 * fetch without reloading, copy, the stats chart fetched as its own chunk only when shown, no token readable by the
 * page) and with JavaScript off (the same forms posted by the browser itself). Screenshots go to
 * .workyard/screenshots/front-end-*.png.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { launchChromium, recordWire, watchCsp } from "../helpers/chromium.ts";
import { CookieJar } from "../helpers/cookie-jar.ts";
import type { Chromium } from "../helpers/chromium.ts";
import { startStack } from "../helpers/stack.ts";
import type { Stack } from "../helpers/stack.ts";

const screenshots = join(projectPaths().work, "screenshots");
const PASSWORD = "correct-horse-battery";

let stack: Stack;
let base: string;

beforeAll(async () => {
  // Access tokens of 30 s, as short as auth allows: the app refreshes before each request (30 s ahead of expiry), so
  // every walk below also rotates the refresh token at each step.
  stack = await startStack({ frontEnd: true, vars: { auth: { AUTH_ACCESS_TTL_SECONDS: 30 } } });
  base = `${stack.sup.url}/app`;
  await mkdir(screenshots, { recursive: true });
});
afterAll(() => stack?.stop());

const uniqueEmail = (tag: string) => `fe-${tag}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}@example.com`;

/** Every answer of the page's own origin with its status and headers, and what would be a problem on any page. */
function watch(page: Page) {
  const answers: { path: string; status: number; headers: Record<string, string> }[] = [];
  const problems: string[] = [];
  page.on("response", (r) => {
    const url = new URL(r.url());
    answers.push({ path: url.pathname, status: r.status(), headers: r.headers() });
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  return { answers, problems };
}

const noticeOf = (page: Page) => page.locator(".notice").textContent();

async function withBrowser(javaScript: boolean, run: (browser: BrowserContext) => Promise<void>) {
  const chrome: Chromium = await launchChromium({ width: 1100, height: 800, javaScript });
  try {
    await run(chrome.browser);
  } finally {
    await chrome.close();
  }
}

describe("the front end (functions/app)", () => {
  it("works with JavaScript: sign up, create, copy, stats with a lazily loaded chart, delete; no reloads, no readable token", async () => {
    await withBrowser(true, async (browser) => {
      await browser.grantPermissions(["clipboard-read", "clipboard-write"], { origin: stack.sup.url });
      const page = await browser.newPage();
      const { answers, problems } = watch(page);
      const cspViolations = await watchCsp(page);
      await page.goto(`${base}/`);
      await page.locator(".page[data-ready=yes]").waitFor({ timeout: 15_000 });
      // A mark the page would lose on any full load: every step below happens in place.
      await page.evaluate("window.__mark = 'still here'");

      const email = uniqueEmail("js");
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Create an account" }).click();
      await expect.poll(() => noticeOf(page), { timeout: 10_000 }).toBe(`Welcome, ${email}.`);
      expect(await page.locator(".who").textContent()).toBe(email);

      await page.getByLabel("URL").fill("https://example.com/front-end/with-js");
      await page.getByLabel("Code (optional)").fill(`js-${Date.now().toString(36)}`);
      const code = await page.getByLabel("Code (optional)").inputValue();
      await page.getByRole("button", { name: "Create" }).click();
      await expect.poll(() => noticeOf(page), { timeout: 10_000 }).toBe(`Created ${stack.sup.url}/links/${code}`);
      const row = page.locator("tbody tr", { hasText: code });
      await expect.poll(() => row.count()).toBe(1);

      await row.getByRole("button", { name: "Copy" }).click();
      await expect.poll(() => row.getByRole("button", { name: "Copied" }).count()).toBe(1);
      expect(await page.evaluate("navigator.clipboard.readText()")).toBe(`${stack.sup.url}/links/${code}`);

      // Two clicks on the short link (counted in Redis until the roll-up), then the stats view.
      for (let i = 0; i < 2; i++) expect((await fetch(`${stack.sup.url}/links/${code}`, { redirect: "manual" })).status).toBe(302);
      // Counted after each redirect is answered: wait until links says so.
      await expect.poll(async () => (await stack.call(`/links/${code}/stats`)).body.clicks, { timeout: 10_000 }).toBe(2);
      expect(answers.some((a) => /\/assets\/Chart-[\w-]+\.js$/.test(a.path))).toBe(false);
      await page.getByRole("link", { name: "Stats" }).click();
      await page.waitForURL(`${base}/stats`);
      await page.locator(".chart canvas").waitFor({ timeout: 10_000 });
      const chunk = answers.find((a) => /\/assets\/Chart-[\w-]+\.js$/.test(a.path));
      expect(chunk?.status).toBe(200);
      expect(await page.locator("tbody tr", { hasText: code }).locator(".num").textContent()).toBe("2");
      await page.screenshot({ path: join(screenshots, "front-end-stats.png"), fullPage: true });

      await page.goBack();
      await page.waitForURL(`${base}/`);
      // The links view again (its own heading: the stats view's table has the code too), loaded by the back button.
      await page.getByRole("heading", { name: "My links" }).waitFor();
      await page.locator("tbody tr", { hasText: code }).waitFor();
      await page.screenshot({ path: join(screenshots, "front-end-links.png"), fullPage: true });
      await page.getByRole("button", { name: `Delete ${code}` }).click();
      await expect.poll(() => noticeOf(page), { timeout: 10_000 }).toBe(`Deleted ${code}.`);
      expect(await page.locator("tbody tr", { hasText: code }).count()).toBe(0);
      expect(await page.evaluate("window.__mark")).toBe("still here");

      // The tokens are in HttpOnly cookies the page cannot read; nothing is kept in the page's storage.
      const cookies = await browser.cookies(`${base}/`);
      const access = cookies.find((c) => c.name === "wy_access");
      expect(access).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/app" });
      expect(cookies.find((c) => c.name === "wy_refresh")).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/app" });
      expect(await page.evaluate("document.cookie")).toBe("");
      expect(await page.evaluate("localStorage.length + sessionStorage.length")).toBe(0);
      expect(await page.content()).not.toContain(access?.value);

      // Cache headers: the built files for a year (their names change with their content), the page revalidated.
      const built = answers.filter((a) => a.path.startsWith("/app/assets/"));
      expect(built.length).toBeGreaterThanOrEqual(3);
      for (const a of built) expect(a.headers["cache-control"], a.path).toBe("public, max-age=31536000, immutable");
      const document = answers.find((a) => a.path === "/app/" && a.headers["content-type"]?.startsWith("text/html"));
      expect(document?.headers["cache-control"]).toBe("private, no-cache");
      expect(document?.headers.etag).toMatch(/^"/);

      // A reload revalidates the page (304 on the wire when it did not change; Playwright reports the cached 200) and
      // takes the built files from the cache without asking.
      const wire = await recordWire(page);
      // The first load shows the page as it was signed out: the first reload gets the signed-in page (200), the second
      // a 304.
      for (let i = 0; i < 2; i++) {
        await page.reload();
        await page.locator(".page[data-ready=yes]").waitFor({ timeout: 15_000 });
      }
      await expect.poll(() => wire.filter((w) => w.endsWith(" /app/")), { timeout: 5000 }).toEqual(["200 /app/", "304 /app/"]);
      expect(wire.filter((w) => w.includes("/app/assets/"))).toEqual([]);

      expect({ csp: await cspViolations(), problems }).toEqual({ csp: [], problems: [] });
      expect(answers.filter((a) => a.status >= 400)).toEqual([]);
      await page.close();
    });
  });

  it("works without JavaScript: the same forms posted by the browser, answered by the function", async () => {
    await withBrowser(false, async (browser) => {
      const page = await browser.newPage();
      const { answers } = watch(page);
      await page.goto(`${base}/`);
      expect(await page.getByRole("heading", { name: "Sign in" }).count()).toBe(1);

      const email = uniqueEmail("nojs");
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Create an account" }).click();
      await page.waitForURL(`${base}/`);
      expect(await noticeOf(page)).toBe(`Welcome, ${email}.`);
      // The notice is shown once.
      await page.reload();
      expect(await page.locator(".notice").count()).toBe(0);

      const code = `nojs-${Date.now().toString(36)}`;
      await page.getByLabel("URL").fill("https://example.com/front-end/without-js");
      await page.getByLabel("Code (optional)").fill(code);
      await page.getByRole("button", { name: "Create" }).click();
      await page.waitForURL(`${base}/`);
      expect(await noticeOf(page)).toBe(`Created ${stack.sup.url}/links/${code}`);
      expect(await page.locator("tbody tr", { hasText: code }).count()).toBe(1);
      await page.screenshot({ path: join(screenshots, "front-end-no-js.png"), fullPage: true });

      // The same code again: the page with links' reason, and the failure's status.
      await page.getByLabel("URL").fill("https://example.com/front-end/again");
      await page.getByLabel("Code (optional)").fill(code);
      const taken = page.waitForResponse((r) => r.request().method() === "POST");
      await page.getByRole("button", { name: "Create" }).click();
      expect((await taken).status()).toBe(409);
      expect(await noticeOf(page)).toBe(`The code "${code}" is taken`);

      // Stats: the numbers, and no chart (nor its chunk) without JavaScript.
      await page.getByRole("link", { name: "Stats" }).click();
      await page.waitForURL(`${base}/stats`);
      expect(await page.locator("tbody tr", { hasText: code }).count()).toBe(1);
      expect(await page.locator(".chart").count()).toBe(0);
      expect(answers.some((a) => a.path.includes("/assets/Chart-"))).toBe(false);

      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(`${base}/`);
      expect(await noticeOf(page)).toBe("Signed out.");
      expect(await page.getByRole("heading", { name: "Sign in" }).count()).toBe(1);

      // A wrong password: the sign-in page again with auth's reason, as a 401.
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill("not-the-password");
      const refused = page.waitForResponse((r) => r.request().method() === "POST");
      await page.getByRole("button", { name: "Sign in" }).click();
      expect((await refused).status()).toBe(401);
      expect(await noticeOf(page)).toMatch(/wrong/);
      await page.close();
    });
  });

  it("keeps the session through refreshes: two requests at once, and a 304 that carries the new cookies", async () => {
    const email = uniqueEmail("http");
    const jar = new CookieJar();
    const keep = (res: Response) => jar.take(res);
    const cookie = () => jar.header();
    const signUp = await fetch(`${base}/session`, {
      method: "POST",
      redirect: "manual",
      headers: { origin: stack.sup.url, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ intent: "sign-up", email, password: PASSWORD }),
    });
    expect(signUp.status).toBe(303);
    keep(signUp);
    const state = async (res: Response) => ((await res.json()) as { user: { email: string } | null }).user?.email ?? null;
    // Both find the access token about to expire and refresh with the same refresh token, at once.
    const both = await Promise.all([0, 1].map(() => fetch(`${base}/stats`, { headers: { accept: "application/json", cookie: cookie() } })));
    expect(await Promise.all(both.map(state))).toEqual([email, email]);
    for (const res of both) keep(res);
    // A revalidated page still hands over the tokens the refresh made (a 304 without them would end the session).
    const page = await fetch(`${base}/`, { headers: { accept: "text/html", cookie: cookie() } });
    keep(page);
    await page.text();
    const again = await fetch(`${base}/`, {
      headers: { accept: "text/html", cookie: cookie(), "if-none-match": page.headers.get("etag") ?? "" },
    });
    expect(again.status).toBe(304);
    expect(again.headers.getSetCookie().some((c) => c.startsWith("wy_refresh="))).toBe(true);
    keep(again);
    const after = await fetch(`${base}/stats`, { headers: { accept: "application/json", cookie: cookie() } });
    expect(await state(after)).toBe(email);
  });

  it("answers what a hostile client sends with a 4xx or the page, never a 500", async () => {
    const form = { "content-type": "application/x-www-form-urlencoded", origin: stack.sup.url };
    const statuses = {
      // A cookie that would put a line break into the Authorization header of the call to links.
      // A token whose claims decode (a future exp), with a line break after its signature.
      brokenToken: (
        await stack.call("/app/", { headers: { cookie: `wy_access=e30.${btoa('{"exp":9999999999}').replaceAll("=", "")}.sig%0Aevil` } })
      ).status,
      brokenMultipart: (
        await stack.call("/app/session", {
          method: "POST",
          headers: { origin: stack.sup.url, "content-type": "multipart/form-data; boundary=zzz" },
          body: "garbage",
        })
      ).status,
      jsonToAForm: (
        await stack.call("/app/session", { method: "POST", headers: { ...form, "content-type": "application/json" }, body: "{}" })
      ).status,
      notice: (await stack.call("/app/", { headers: { cookie: "wy_notice=%7B%22kind%22%3A1%7D" } })).status,
    };
    expect(statuses).toEqual({ brokenToken: 200, brokenMultipart: 401, jsonToAForm: 401, notice: 200 });
  });

  it("refuses a form posted from another site, and answers a page load at an unknown address with the page", async () => {
    const cookieless = await stack.call("/app/links", {
      method: "POST",
      headers: { origin: "http://evil.example", "content-type": "application/x-www-form-urlencoded" },
      body: "url=https://evil.example/",
    });
    expect(cookieless.status).toBe(403);
    const crossSite = await stack.call("/app/session", {
      method: "POST",
      headers: { "sec-fetch-site": "cross-site", "content-type": "application/x-www-form-urlencoded" },
      body: "email=a@example.com&password=x",
    });
    expect(crossSite.status).toBe(403);
    // Any unsafe method, whatever its body's type (a JSON post from another site included).
    const json = await stack.call("/app/links", {
      method: "POST",
      headers: { origin: "http://evil.example", "content-type": "application/json" },
      body: "{}",
    });
    expect(json.status).toBe(403);
    const unknown = await stack.call("/app/no/such/page", { headers: { accept: "text/html" } });
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain("There is no page at this address.");
    const api = await stack.call("/app/no/such/page", { headers: { accept: "application/json" } });
    expect({ status: api.status, code: (api.body as { error?: { code?: string } }).error?.code }).toEqual({
      status: 404,
      code: "not_found",
    });
    // A form's address answers POST only.
    const get = await stack.call("/app/session");
    expect({ status: get.status, allow: get.res.headers.get("allow") }).toEqual({ status: 405, allow: "POST" });
    // The page template itself is not served as a file: only the built assets are.
    expect((await stack.call("/app/index.html")).status).toBe(404);
  });
});
