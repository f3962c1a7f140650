/**
 * Which file a path names (lib/workers/assets/resolve.ts), in each of Wrangler's html_handling and not_found_handling
 * modes, against the answers Cloudflare documents for them (developers.cloudflare.com/workers/static-assets/routing/
 * advanced/html-handling/).
 */
import { describe, expect, it } from "vitest";
import { decodePath, encodePath, resolvePath } from "../../lib/workers/assets/resolve.ts";
import type { HtmlHandling, NotFoundHandling } from "../../lib/shared/assets.ts";

const FILES = [
  "/index.html",
  "/file.html",
  "/folder/index.html",
  "/both.html",
  "/both/index.html",
  "/logo.png",
  "/sub/404.html",
  "/404.html",
];

const resolve = (path: string, htmlHandling: HtmlHandling, notFoundHandling: NotFoundHandling = "none") =>
  resolvePath(path, {
    htmlHandling,
    notFoundHandling,
    // Each file its own content, so that a redirect is only made to a path serving the same one.
    etagOf: (p) => (FILES.includes(p) ? `etag-of-${p}` : undefined),
  });

describe("html_handling", () => {
  it("auto-trailing-slash: /file serves file.html, /folder/ serves folder/index.html, the other spellings redirect", () => {
    const h = "auto-trailing-slash";
    expect(resolve("/", h)).toEqual({ asset: "/index.html", status: 200 });
    expect(resolve("/index.html", h)).toEqual({ redirect: "/" });
    expect(resolve("/file", h)).toEqual({ asset: "/file.html", status: 200 });
    expect(resolve("/file.html", h)).toEqual({ redirect: "/file" });
    expect(resolve("/file/", h)).toEqual({ redirect: "/file" });
    expect(resolve("/folder", h)).toEqual({ redirect: "/folder/" });
    expect(resolve("/folder/", h)).toEqual({ asset: "/folder/index.html", status: 200 });
    expect(resolve("/folder/index.html", h)).toEqual({ redirect: "/folder/" });
    expect(resolve("/folder/index", h)).toEqual({ redirect: "/folder/" });
    expect(resolve("/logo.png", h)).toEqual({ asset: "/logo.png", status: 200 });
    // Both /both.html and /both/index.html: each keeps its own path.
    expect(resolve("/both", h)).toEqual({ asset: "/both.html", status: 200 });
    expect(resolve("/both/", h)).toEqual({ asset: "/both/index.html", status: 200 });
    expect(resolve("/nothing", h)).toBeNull();
  });

  it("force-trailing-slash: every page at a path ending in /", () => {
    const h = "force-trailing-slash";
    expect(resolve("/file", h)).toEqual({ redirect: "/file/" });
    expect(resolve("/file/", h)).toEqual({ asset: "/file.html", status: 200 });
    expect(resolve("/file.html", h)).toEqual({ redirect: "/file/" });
    expect(resolve("/folder", h)).toEqual({ redirect: "/folder/" });
    expect(resolve("/folder/", h)).toEqual({ asset: "/folder/index.html", status: 200 });
    expect(resolve("/both.html", h)).toEqual({ asset: "/both.html", status: 200 });
  });

  it("drop-trailing-slash: every page at a path without the /", () => {
    const h = "drop-trailing-slash";
    expect(resolve("/", h)).toEqual({ asset: "/index.html", status: 200 });
    expect(resolve("/file", h)).toEqual({ asset: "/file.html", status: 200 });
    expect(resolve("/file/", h)).toEqual({ redirect: "/file" });
    expect(resolve("/folder", h)).toEqual({ asset: "/folder/index.html", status: 200 });
    expect(resolve("/folder/", h)).toEqual({ redirect: "/folder" });
    expect(resolve("/folder/index.html", h)).toEqual({ redirect: "/folder" });
    expect(resolve("/both/index.html", h)).toEqual({ asset: "/both/index.html", status: 200 });
  });

  it("none: only a file's exact path", () => {
    const h = "none";
    expect(resolve("/file.html", h)).toEqual({ asset: "/file.html", status: 200 });
    expect(resolve("/file", h)).toBeNull();
    expect(resolve("/folder/", h)).toBeNull();
  });
});

describe("not_found_handling", () => {
  it("single-page-application: /index.html for any path with no file", () => {
    expect(resolve("/app/route/42", "auto-trailing-slash", "single-page-application")).toEqual({ asset: "/index.html", status: 200 });
    expect(resolve("/logo.png", "auto-trailing-slash", "single-page-application")).toEqual({ asset: "/logo.png", status: 200 });
  });

  it("404-page: the nearest 404.html up the path, as a 404", () => {
    expect(resolve("/sub/deep/missing", "auto-trailing-slash", "404-page")).toEqual({ asset: "/sub/404.html", status: 404 });
    expect(resolve("/other/missing", "auto-trailing-slash", "404-page")).toEqual({ asset: "/404.html", status: 404 });
  });
});

describe("paths", () => {
  it("decodes each segment (a bad escape stays as it is) and joins repeated slashes; encodes for the canonical path", () => {
    expect(decodePath("/a%20b//c%2Fd/%E0%A4%A")).toBe("/a b/c/d/%E0%A4%A");
    expect(decodePath("/%2e%2e/x")).toBe("/../x");
    expect(encodePath("/a b/[x]")).toBe("/a%20b/%5Bx%5D");
  });
});
