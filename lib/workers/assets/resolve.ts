/**
 * Which asset a path names, as Cloudflare's asset worker decides it (workers-sdk, asset-worker/src/handler.ts), so
 * that a folder deployed with `wrangler deploy` answers the same paths there and here: the four `html_handling`
 * modes (which file serves `/about`, `/about/` and `/about.html`, and which of them redirects to which), then
 * `not_found_handling` (the SPA's `/index.html`, or the nearest `404.html`). Pure: the caller says which files exist.
 */
import type { HtmlHandling, NotFoundHandling } from "../../shared/assets.ts";

/** Serve this file with this status, or redirect to this path (decoded), or nothing matched (null). */
export type Intent = { asset: string; status: 200 | 404 } | { redirect: string } | null;

export interface ResolveOptions {
  htmlHandling: HtmlHandling;
  notFoundHandling: NotFoundHandling;
  /** The ETag of the file at this path, or undefined when there is none. */
  etagOf: (path: string) => string | undefined;
}

const found = (asset: string, status: 200 | 404 = 200): Intent => ({ asset, status });

/** The intent for a decoded path (`skipRedirects`: only a file served at this very path). */
export function resolvePath(path: string, opts: ResolveOptions, skipRedirects = false): Intent {
  switch (opts.htmlHandling) {
    case "auto-trailing-slash":
      return autoTrailingSlash(path, opts, skipRedirects);
    case "force-trailing-slash":
      return forceTrailingSlash(path, opts, skipRedirects);
    case "drop-trailing-slash":
      return dropTrailingSlash(path, opts, skipRedirects);
    case "none":
      return opts.etagOf(path) !== undefined ? found(path) : notFound(path, opts);
  }
}

/**
 * A redirect to `destination` when the file there would be `file` (the same content): never to a path that would
 * answer something else. Nothing when `destination` itself is a file.
 */
function redirectIfSame(file: string, destination: string, opts: ResolveOptions, skip: boolean): Intent {
  if (skip || opts.etagOf(destination) !== undefined) return null;
  const there = resolvePath(destination, opts, true);
  if (there && "asset" in there && opts.etagOf(there.asset) === opts.etagOf(file)) return { redirect: destination };
  return null;
}

/** The first of `tries` that gives an intent. */
function first(...tries: (() => Intent)[]): Intent {
  for (const attempt of tries) {
    const intent = attempt();
    if (intent) return intent;
  }
  return null;
}

const ifExists = (path: string, opts: ResolveOptions) => () => (opts.etagOf(path) !== undefined ? found(path) : null);

function autoTrailingSlash(path: string, opts: ResolveOptions, skip: boolean): Intent {
  const exact = opts.etagOf(path) !== undefined;
  const redirect = (file: string, to: string) => () => redirectIfSame(file, to, opts, skip);
  let early: Intent = null;
  if (path.endsWith("/index")) {
    if (exact) return found(path);
    early = first(
      redirect(`${path}.html`, path.slice(0, -"index".length)),
      redirect(`${path.slice(0, -"/index".length)}.html`, path.slice(0, -"/index".length)),
    );
  } else if (path.endsWith("/index.html")) {
    early = first(
      redirect(path, path.slice(0, -"index.html".length)),
      redirect(`${path.slice(0, -"/index.html".length)}.html`, path.slice(0, -"/index.html".length)),
    );
  } else if (path.endsWith("/")) {
    early = first(ifExists(`${path}index.html`, opts), redirect(`${path.slice(0, -1)}.html`, path.slice(0, -1)));
  } else if (path.endsWith(".html")) {
    early = first(
      redirect(path, path.slice(0, -".html".length)),
      redirect(`${path.slice(0, -".html".length)}/index.html`, `${path.slice(0, -".html".length)}/`),
    );
  }
  return (
    early ??
    first(() => (exact ? found(path) : null), ifExists(`${path}.html`, opts), redirect(`${path}/index.html`, `${path}/`)) ??
    notFound(path, opts)
  );
}

function forceTrailingSlash(path: string, opts: ResolveOptions, skip: boolean): Intent {
  const exact = opts.etagOf(path) !== undefined;
  const redirect = (file: string, to: string) => () => redirectIfSame(file, to, opts, skip);
  let early: Intent = null;
  if (path.endsWith("/index")) {
    if (exact) return found(path);
    early = first(
      redirect(`${path}.html`, path.slice(0, -"index".length)),
      redirect(`${path.slice(0, -"/index".length)}.html`, path.slice(0, -"index".length)),
    );
  } else if (path.endsWith("/index.html")) {
    early = first(
      redirect(path, path.slice(0, -"index.html".length)),
      redirect(`${path.slice(0, -"/index.html".length)}.html`, path.slice(0, -"index.html".length)),
    );
  } else if (path.endsWith("/")) {
    early = first(ifExists(`${path}index.html`, opts), ifExists(`${path.slice(0, -1)}.html`, opts));
  } else if (path.endsWith(".html")) {
    // Both /foo.html and /foo/index.html: /foo.html is served at /foo.html only.
    early = first(
      redirect(path, `${path.slice(0, -".html".length)}/`),
      () => (exact ? found(path) : null),
      redirect(`${path.slice(0, -".html".length)}/index.html`, `${path.slice(0, -".html".length)}/`),
    );
  }
  return (
    early ??
    first(() => (exact ? found(path) : null), redirect(`${path}.html`, `${path}/`), redirect(`${path}/index.html`, `${path}/`)) ??
    notFound(path, opts)
  );
}

function dropTrailingSlash(path: string, opts: ResolveOptions, skip: boolean): Intent {
  const exact = opts.etagOf(path) !== undefined;
  const redirect = (file: string, to: string) => () => redirectIfSame(file, to, opts, skip);
  let early: Intent = null;
  if (path.endsWith("/index")) {
    if (exact) return found(path);
    if (path === "/index") early = redirect("/index.html", "/")();
    else
      early = first(
        redirect(`${path.slice(0, -"/index".length)}.html`, path.slice(0, -"/index".length)),
        redirect(`${path}.html`, path.slice(0, -"/index".length)),
      );
  } else if (path.endsWith("/index.html")) {
    if (path === "/index.html") early = redirect("/index.html", "/")();
    // Both /foo.html and /foo/index.html: /foo/index.html is served at /foo/index.html only.
    else
      early = first(
        redirect(path, path.slice(0, -"/index.html".length)),
        () => (exact ? found(path) : null),
        redirect(`${path.slice(0, -"/index.html".length)}.html`, path.slice(0, -"/index.html".length)),
      );
  } else if (path === "/") {
    early = ifExists("/index.html", opts)();
  } else if (path.endsWith("/")) {
    early = first(redirect(`${path.slice(0, -1)}.html`, path.slice(0, -1)), redirect(`${path.slice(0, -1)}/index.html`, path.slice(0, -1)));
  } else if (path.endsWith(".html")) {
    early = first(
      redirect(path, path.slice(0, -".html".length)),
      redirect(`${path.slice(0, -".html".length)}/index.html`, path.slice(0, -".html".length)),
    );
  }
  return (
    early ??
    first(() => (exact ? found(path) : null), ifExists(`${path}.html`, opts), ifExists(`${path}/index.html`, opts)) ??
    notFound(path, opts)
  );
}

/** `not_found_handling`: the SPA's /index.html (200), the nearest 404.html up the path (404), or nothing. */
function notFound(path: string, opts: ResolveOptions): Intent {
  if (opts.notFoundHandling === "single-page-application") return opts.etagOf("/index.html") !== undefined ? found("/index.html") : null;
  if (opts.notFoundHandling === "404-page") {
    for (let dir = path; dir;) {
      dir = dir.slice(0, dir.lastIndexOf("/"));
      if (opts.etagOf(`${dir}/404.html`) !== undefined) return found(`${dir}/404.html`, 404);
    }
  }
  return null;
}

/** A URL path decoded segment by segment (a segment that is not valid percent-encoding stays as it is), `//` as `/`. */
export function decodePath(pathname: string): string {
  return pathname
    .split("/")
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    })
    .join("/")
    .replace(/\/+/g, "/");
}

/** The canonical form a decoded path is served at: each segment percent-encoded. */
export function encodePath(path: string): string {
  return path
    .split("/")
    .map((segment) => encodeURIComponent(segment))
    .join("/");
}
