/**
 * Serving a function's static assets inside workerd, from the table the build wrote (lib/shared/assets.ts) and the
 * release's stored files (a `disk` service, reached only by content hash). Runs in the gateway's isolate for requests
 * (no extra hop) and in the assets worker behind a function's ASSETS binding. What it answers:
 *   - the asset for the path (resolve.ts: Cloudflare's html_handling and not_found_handling), or a 307 to the path
 *     it is served at; 405 for a method other than GET and HEAD on an asset;
 *   - `ETag` and `304` for `If-None-Match`; a year's `immutable` caching for fingerprinted names, revalidation for
 *     everything else;
 *   - the brotli or gzip copy the client accepts (`Vary: Accept-Encoding`), or a byte range of the file itself;
 *   - `X-Content-Type-Options: nosniff` on all, and the page's Content-Security-Policy on HTML.
 * null when no asset matches: the function's own code answers (or the platform's 404).
 */
import type { AssetFile, AssetsManifest } from "../../shared/assets.ts";
import { REQUEST_ID_HEADER } from "../../sdk/request-id.ts";
import { decodePath, encodePath, resolvePath } from "./resolve.ts";

export interface FileStore {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

/**
 * Files kept in this isolate's memory once read (their content never changes under a name: it is their hash), up to
 * 32 MiB, each up to 1 MiB: a request for one is answered without a subrequest to the disk service, which cost more
 * than the rest of the answer. Bigger files, and ranges, are read from the disk service each time.
 */
const MEMORY_LIMIT = 32 * 1024 * 1024;
const MEMORY_FILE_LIMIT = 1024 * 1024;
const memory = new Map<string, ArrayBuffer>();
let memoryBytes = 0;

async function readWhole(files: FileStore, stored: string): Promise<ArrayBuffer | undefined> {
  const kept = memory.get(stored);
  if (kept) return kept;
  const read = await files.fetch(`http://assets/${stored}`);
  if (read.status !== 200) {
    await read.body?.cancel();
    return undefined;
  }
  const bytes = await read.arrayBuffer();
  if (memoryBytes + bytes.byteLength <= MEMORY_LIMIT) {
    memory.set(stored, bytes);
    memoryBytes += bytes.byteLength;
  }
  return bytes;
}

const IMMUTABLE = "public, max-age=31536000, immutable";
const REVALIDATE = "public, max-age=0, must-revalidate";

/** The encodings the client accepts with a q above 0 ("br;q=0" refuses br); `*` accepts any. */
function accepted(header: string | null): Set<string> {
  const out = new Set<string>();
  if (!header) return out;
  for (const part of header.split(",")) {
    const [name = "", ...params] = part.trim().toLowerCase().split(";");
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) continue;
    out.add(name.trim());
  }
  return out;
}

function methodNotAllowed(requestId: string | undefined): Response {
  const headers: Record<string, string> = { allow: "GET, HEAD", "x-content-type-options": "nosniff" };
  if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
  return new Response(null, { status: 405, headers });
}

/** Whether `If-None-Match` names this ETag (weak or strong, in a list, or `*`). */
function matches(ifNoneMatch: string, etag: string): boolean {
  return ifNoneMatch
    .split(",")
    .map((t) => t.trim())
    .some((t) => t === "*" || t === `"${etag}"` || t === `W/"${etag}"`);
}

/**
 * A file's headers as a plain object, handed to the Response in one go: each Headers call crosses into workerd, and
 * an answer from memory is mostly such calls (measured: a Headers object filled one set() at a time cost more than
 * the rest of serving the file). An object, not name/value pairs: workerd reads pairs through the iterator protocol,
 * two generators deep, which cost a third more instructions per answer than the object's properties (callgrind).
 */
function assetHeaders(file: AssetFile, manifest: AssetsManifest, requestId: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    "content-type": file.type,
    etag: `"${file.etag}"`,
    "cache-control": file.immutable ? IMMUTABLE : REVALIDATE,
    "x-content-type-options": "nosniff",
  };
  if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
  if (file.br !== undefined || file.gz !== undefined) headers.vary = "Accept-Encoding";
  if (file.type.startsWith("text/html")) {
    headers["content-security-policy"] = manifest.contentSecurityPolicy;
    headers["referrer-policy"] = "strict-origin-when-cross-origin";
    headers["x-frame-options"] = "DENY";
  }
  return headers;
}

/**
 * A path that decoding and encoding leave as it is, and that no html_handling mode answers with anything but the
 * file of that name when there is one (the modes differ only for "/", ".html" and "/index" paths): a bundle's
 * `/assets/index-BXk2_a9Q.js`. Such a path is looked up directly.
 */
const PLAIN_PATH = /^(\/[A-Za-z0-9_.~-]+)+$/;
const plainHit = (path: string, manifest: AssetsManifest) =>
  PLAIN_PATH.test(path) && !path.endsWith(".html") && !path.endsWith("/index") && Object.hasOwn(manifest.files, path);

export interface AssetRequest {
  request: Request;
  /** The path as the function sees it (after the gateway's prefix), not decoded; and the query, with its "?". */
  path: string;
  search: string;
  /** Where the function is served ("/app"), for the Location of a redirect; "" when served at the root. */
  prefix: string;
  /** Sent back as X-Request-Id (the gateway's id for the request). */
  requestId?: string;
  /** Bounds a read from the disk service (the function's deadline); reads from memory need none. */
  deadline?: <T>(work: Promise<T>) => Promise<T>;
}

/** The answer for an asset request, or null when no asset matches and the function's code should answer. */
export async function serveAsset(
  { request, path, search, prefix, requestId, deadline = (work) => work }: AssetRequest,
  manifest: AssetsManifest,
  files: FileStore,
): Promise<Response | null> {
  const method = request.method;
  let intent: { asset: string; status: 200 | 404 };
  if (plainHit(path, manifest)) intent = { asset: path, status: 200 };
  else {
    const decoded = decodePath(path);
    // With code of its own, only a navigation (a page load) falls back to the SPA's page or a 404 page; an API call
    // or a script's fetch to a path with no file reaches the code (Cloudflare's rule since 2025-04-01).
    const navigation = request.headers.get("sec-fetch-mode") === "navigate";
    const resolved = resolvePath(decoded, {
      htmlHandling: manifest.htmlHandling,
      notFoundHandling: manifest.hasWorker && !navigation ? "none" : manifest.notFoundHandling,
      etagOf: (p) => (Object.hasOwn(manifest.files, p) ? manifest.files[p]?.etag : undefined),
    });
    if (!resolved) return null;
    if (method !== "GET" && method !== "HEAD") return methodNotAllowed(requestId);
    const destination = encodePath("redirect" in resolved ? resolved.redirect : decoded);
    if ("redirect" in resolved || destination !== path) {
      const location: Record<string, string> = { location: `${prefix}${destination}${search}`, "cache-control": REVALIDATE };
      if (requestId !== undefined) location[REQUEST_ID_HEADER] = requestId;
      return new Response(null, { status: 307, headers: location });
    }
    intent = resolved;
  }
  if (method !== "GET" && method !== "HEAD") return methodNotAllowed(requestId);
  const file = manifest.files[intent.asset];
  if (!file) return null;
  const headers = assetHeaders(file, manifest, requestId);
  const ifNoneMatch = request.headers.get("if-none-match");
  if (ifNoneMatch && matches(ifNoneMatch, file.etag)) return new Response(null, { status: 304, headers });

  // A range is of the file itself; otherwise the smallest copy the client takes.
  const range = request.headers.get("range");
  let stored = file.etag;
  if (!range) {
    const accepts = accepted(request.headers.get("accept-encoding"));
    if (file.br !== undefined && accepts.has("br")) stored = `${file.etag}.br`;
    else if (file.gz !== undefined && (accepts.has("gzip") || accepts.has("*"))) stored = `${file.etag}.gz`;
  }
  if (stored !== file.etag) headers["content-encoding"] = stored.endsWith(".br") ? "br" : "gzip";
  else headers["accept-ranges"] = "bytes";
  const size = stored.endsWith(".br") ? file.br : stored.endsWith(".gz") ? file.gz : file.size;
  if (!range && size !== undefined && size <= MEMORY_FILE_LIMIT) {
    // HEAD needs no bytes: the sizes are in the table.
    headers["content-length"] = String(size);
    if (method === "HEAD") return new Response(null, { status: intent.status, headers });
    const bytes = memory.get(stored) ?? (await deadline(readWhole(files, stored)));
    if (!bytes) throw new Error(`the release has no stored file ${stored} for ${intent.asset}: build and deploy again`);
    return new Response(bytes, { status: intent.status, headers, encodeBody: "manual" });
  }
  const read = await deadline(files.fetch(`http://assets/${stored}`, { method, headers: range ? { range } : {} }));
  if (read.status === 404) {
    await read.body?.cancel();
    throw new Error(`the release has no stored file ${stored} for ${intent.asset}: build and deploy again`);
  }
  for (const name of ["content-length", "content-range"]) {
    const value = read.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  const status = read.status === 206 || read.status === 416 ? read.status : intent.status;
  // workerd would compress again a body it is handed compressed unless told it already is (encodeBody: "manual").
  return new Response(method === "HEAD" ? null : read.body, { status, headers, encodeBody: "manual" });
}
