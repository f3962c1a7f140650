/**
 * docs: one API reference page for every function's OpenAPI document (Scalar), served from the project's own files.
 *   GET /           the page: Scalar with one source per function whose /<name>/openapi.json documents routes
 *   GET /scalar.js  Scalar's standalone bundle (@scalar/api-reference), bundled into this function as text: nothing
 *                   is loaded from a CDN, so the page works without internet and under a strict Content-Security-Policy
 *   GET /page.js    the page's own script: asks each function for its document, then starts Scalar
 *
 * The functions come from the build (WORKYARD_FUNCTIONS: every function of the release), not from this file: a new
 * function with documented routes appears here on the next build.
 */
import { html, raw } from "hono/html";
import { createApp } from "#workyard/app";
import { defineEnv } from "#workyard/env";
import { routePrefix } from "#workyard/route";
import { z } from "#workyard/openapi";
// Text, not code: esbuild (in Wrangler, and in npm run dev) inlines the file as a string. The package does not export
// this file; patches/@scalar+api-reference+*.patch adds the export.
import scalarScript from "@scalar/api-reference/browser/standalone.js" with { type: "text" };

const env = defineEnv(z.object({ WORKYARD_FUNCTIONS: z.string().default(""), APP_NAME: z.string().default("workyard") }));

/**
 * Everything from this origin, nothing from anywhere else. Scripts only from files (no inline script runs); styles
 * inline too (Scalar sets style attributes and adds style elements at run time); fetch only to this origin (the
 * documents and "Try it" through the gateway); images and fonts from data: URLs Scalar makes.
 */
const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The page's script. It reads its settings from a JSON element (data, not code: no inline script under the policy). */
const PAGE_SCRIPT = `"use strict";
// Scalar's copy of zod tries new Function("") once to see whether it may compile validators; under this page's policy
// that try is a CSP violation (and fails anyway). Set before scalar.js loads: zod reads this config and does not try.
globalThis.__zod_globalConfig = { ...globalThis.__zod_globalConfig, jitless: true };
// Scalar's script comes after this one; both have run by DOMContentLoaded.
document.addEventListener("DOMContentLoaded", async () => {
  const settings = JSON.parse(document.getElementById("docs-settings").textContent);
  const found = await Promise.all(
    settings.functions.map(async (name) => {
      const url = settings.base + "/" + name + "/openapi.json";
      try {
        const res = await fetch(url, { headers: { accept: "application/json" } });
        if (!res.ok) return undefined;
        const doc = await res.json();
        // A function with no documented routes (or one that serves no document) is left out.
        if (typeof doc.openapi !== "string" || Object.keys(doc.paths || {}).length === 0) return undefined;
        return { title: (doc.info && doc.info.title) || name, slug: name, url, agent: { disabled: true } };
      } catch {
        return undefined;
      }
    }),
  );
  const sources = found.filter(Boolean);
  // Which documents the page shows, for a person inspecting it and for the tests.
  document.documentElement.dataset.sources = sources.map((s) => s.slug).join(",");
  const status = document.getElementById("docs-status");
  if (sources.length === 0) {
    status.textContent = "No function serves an OpenAPI document with routes yet.";
    return;
  }
  status.remove();
  window.Scalar.createApiReference("#app", {
    sources,
    // Nothing from outside: no web fonts from Scalar's servers, no telemetry, none of Scalar's hosted tools
    // (its developer tools bar, "Ask AI", the hosted client), which it shows on localhost by default.
    withDefaultFonts: false,
    telemetry: false,
    showDeveloperTools: "never",
    agent: { disabled: true },
    hideClientButton: true,
    persistAuth: false,
    theme: "default",
  });
});
`;

/** A short hex SHA-256 of a text. */
const shortHash = async (text: string) =>
  Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))).slice(0, 8), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");

let scalarTag: Promise<string> | undefined;
let pageTag: Promise<string> | undefined;
/** Scalar's bundle's hash, made once per isolate: its URL changes when it does, so it can be cached for good. */
const scalarVersion = () => (scalarTag ??= shortHash(scalarScript));
/** The page script's hash, for the same reason. */
const pageVersion = () => (pageTag ??= shortHash(PAGE_SCRIPT));

let gzipped: Promise<ArrayBuffer> | undefined;
/** Scalar's bundle gzipped (4.9 MB → about 1.4 MB), made once per isolate on the first request that accepts gzip. */
const scalarGzip = () =>
  (gzipped ??= new Response(new Blob([scalarScript]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());

const app = createApp({ api: { title: "docs", description: "The API reference page." } });

app.get("/", async (c) => {
  const prefix = routePrefix(c);
  // The other functions are this one's siblings under the gateway: /docs → "", /x/docs → "/x".
  const self = prefix.slice(prefix.lastIndexOf("/") + 1);
  const base = prefix.slice(0, prefix.length - self.length - 1);
  const functions = env(c)
    .WORKYARD_FUNCTIONS.split(",")
    .map((f) => f.trim())
    .filter((f) => f && f !== (self || "docs"));
  // JSON inside a <script type="application/json">: "<" escaped so no value can end the element.
  const settings = JSON.stringify({ base, functions }).replaceAll("<", "\\u003c");
  c.set("contentSecurityPolicy", PAGE_POLICY);
  c.header("cache-control", "no-cache");
  return c.html(
    html`<!doctype html>
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>API reference · ${env(c).APP_NAME}</title>
          <link rel="icon" href="data:," />
        </head>
        <body>
          <p id="docs-status">Loading the API reference…</p>
          <div id="app"></div>
          <script id="docs-settings" type="application/json">
            ${raw(settings)}
          </script>
          <script src="${prefix}/page.js?v=${await pageVersion()}"></script>
          <script src="${prefix}/scalar.js?v=${await scalarVersion()}"></script>
        </body>
      </html>`,
  );
});

app.get("/page.js", (c) => {
  c.header("cache-control", c.req.query("v") ? "public, max-age=31536000, immutable" : "public, max-age=300");
  return c.body(PAGE_SCRIPT, 200, { "content-type": "text/javascript; charset=utf-8" });
});

app.get("/scalar.js", async (c) => {
  const etag = `"${await scalarVersion()}"`;
  const headers: Record<string, string> = {
    "content-type": "text/javascript; charset=utf-8",
    etag,
    vary: "accept-encoding",
    // The page asks for it with ?v=<hash>: that URL never changes meaning.
    "cache-control": c.req.query("v") ? "public, max-age=31536000, immutable" : "public, max-age=300",
  };
  if (c.req.header("if-none-match") === etag) return c.body(null, 304, headers);
  if (/\bgzip\b/.test(c.req.header("accept-encoding") ?? "")) {
    // encodeBody "manual": the bytes are gzip already; workerd sends them as they are.
    return new Response(await scalarGzip(), { headers: { ...headers, "content-encoding": "gzip" }, encodeBody: "manual" });
  }
  return c.body(scalarScript, 200, headers);
});

export default app;
