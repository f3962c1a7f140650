/**
 * Headless Chromium for the browser tests (the dashboard, the docs page): Debian's /usr/bin/chromium driven by
 * playwright-core, with a fresh profile each run (launchPersistentContext is how Playwright takes --user-data-dir) and
 * nothing that would reach the network by itself.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

export interface Chromium {
  browser: BrowserContext;
  close(): Promise<void>;
}

/** `javaScript: false` is a browser with JavaScript turned off (a page must work by its HTML alone). */
export async function launchChromium({ width = 1400, height = 1000, javaScript = true } = {}): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`);
  const profile = await mkdtemp(join(tmpdir(), "workyard-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width, height },
    javaScriptEnabled: javaScript,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * What came over the wire for each request of `page` from now on, as "304 /app/": Playwright reports a revalidated
 * answer as the cached 200, while the DevTools protocol's raw response says what the server sent.
 */
export async function recordWire(page: Page): Promise<string[]> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  const urls = new Map<string, string>();
  const wire: string[] = [];
  cdp.on("Network.requestWillBeSent", (e) => urls.set(e.requestId, new URL(e.request.url).pathname));
  cdp.on("Network.responseReceivedExtraInfo", (e) => wire.push(`${e.statusCode} ${urls.get(e.requestId) ?? "?"}`));
  return wire;
}

/** Keeps the page's Content-Security-Policy violations from its next load on; the function returned reads them. */
export async function watchCsp(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript({
    content: `document.addEventListener("securitypolicyviolation", (e) => (window.__csp ??= []).push(e.violatedDirective + " " + e.blockedURI));`,
  });
  return () => page.evaluate<string[]>("window.__csp ?? []");
}
