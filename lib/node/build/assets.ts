/**
 * A function's static assets (Wrangler's `[assets]`) in a release: every file of its folder stored under its content
 * hash (`<release>/assets/<function>/<etag>`, with `.br` and `.gz` copies made here for text worth compressing), and
 * the table the gateway serves them from (path → ETag, type, sizes). Stored in the release, they switch with the code
 * on a deploy or a rollback; named by content, no request path ever reaches the file system.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { promisify } from "node:util";
import { brotliCompress, constants as zlib, gzip } from "node:zlib";
import mime from "mime";
import { RELEASE_ASSETS_DIR } from "../../shared/assets.ts";
import type { AssetFile } from "../../shared/assets.ts";
import { ConfigError } from "./wrangler-config.ts";
import type { AssetsConfig } from "./wrangler-config.ts";

/** Cloudflare's limit for one asset file. */
export const MAX_ASSET_BYTES = 25 * 1024 * 1024;
/** Cloudflare's limit on files per function (paid plans). */
export const MAX_ASSET_FILES = 100_000;
/** Smaller text is sent as it is: compressing it saves less than the header costs. */
const COMPRESS_FROM_BYTES = 1024;

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** Files Wrangler never uploads as assets: its own control files, and anything under a dot-folder or named with a dot. */
const SKIPPED = new Set(["_headers", "_redirects", "_routes.json", "_worker.js", ".assetsignore"]);

/**
 * A name with a bundler's content hash in it ("index-BXk2_a9Q.js", "app.3f9a1c2e.css"): such a file never changes
 * under the same name. The hash is 8 or more letters, digits, "_" or "-" after a "-" or "." before the extension,
 * with a digit or a capital in it (so "my-component.js" is not one).
 */
export function isFingerprinted(fileName: string): boolean {
  const m = /[.-]([A-Za-z0-9_-]{8,})\.[A-Za-z0-9]+$/.exec(fileName);
  return m?.[1] !== undefined && /[0-9A-Z]/.test(m[1]);
}

/** Content-Type for a path: by extension, with a charset for text. */
export function contentType(path: string): string {
  const type = mime.getType(path) ?? "application/octet-stream";
  return isText(type) ? `${type}; charset=utf-8` : type;
}

function isText(type: string): boolean {
  return (
    type.startsWith("text/") ||
    ["application/javascript", "application/json", "application/xml", "image/svg+xml"].includes(type) ||
    type.endsWith("+json") ||
    type.endsWith("+xml")
  );
}

/** Types a compressed copy is made for. */
function compressible(type: string): boolean {
  const bare = type.split(";")[0] ?? "";
  return isText(bare) || ["application/wasm", "font/ttf", "font/otf", "application/vnd.ms-fontobject"].includes(bare);
}

/** Every file under `dir` Wrangler would upload, as paths from `dir` with "/" separators. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join("/"))
    .filter((path) => !path.split("/").some((segment) => segment.startsWith(".")) && !SKIPPED.has(path))
    .sort();
}

export interface StoredAssets {
  files: Record<string, AssetFile>;
  /** Bytes of the files as they are, and of what was stored (the copies and their compressed forms). */
  bytes: number;
  storedBytes: number;
}

/**
 * Stores the files of `config.directory` into `<releaseDir>/assets/<fn>/` and returns their table. A missing folder
 * or a file over Cloudflare's limit is a ConfigError that says what to do.
 */
export async function storeAssets(fn: string, config: AssetsConfig, releaseDir: string): Promise<StoredAssets> {
  const dir = config.directory;
  if (!existsSync(dir) || !(await stat(dir)).isDirectory()) {
    throw new ConfigError(
      `functions/${fn}/wrangler.toml: [assets] directory ${dir} does not exist. Build the files first (a front end's build writes them), ` +
        "or point directory at the folder that holds them.",
    );
  }
  const paths = await listFiles(dir);
  if (paths.length > MAX_ASSET_FILES)
    throw new ConfigError(`functions/${fn}: ${paths.length} asset files; Cloudflare takes at most ${MAX_ASSET_FILES}`);
  const out = join(releaseDir, RELEASE_ASSETS_DIR, fn);
  await mkdir(out, { recursive: true });
  const files: Record<string, AssetFile> = {};
  const written = new Set<string>();
  let bytes = 0;
  let storedBytes = 0;
  /** Writes a stored file once (files with the same content share it). */
  const store = async (name: string, data: Buffer) => {
    if (written.has(name)) return;
    written.add(name);
    await writeFile(join(out, name), data);
    storedBytes += data.length;
  };
  for (const path of paths) {
    const body = await readFile(join(dir, path));
    if (body.length > MAX_ASSET_BYTES) {
      throw new ConfigError(`functions/${fn}: the asset ${path} is ${body.length} bytes; Cloudflare serves files up to 25 MiB`);
    }
    bytes += body.length;
    const etag = createHash("sha256").update(body).digest("hex").slice(0, 32);
    const type = contentType(path);
    const file: AssetFile = { etag, type, size: body.length };
    if (isFingerprinted(path.slice(path.lastIndexOf("/") + 1))) file.immutable = true;
    if (compressible(type) && body.length >= COMPRESS_FROM_BYTES) {
      const [br, gz] = await Promise.all([
        brotli(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } }),
        gzipAsync(body, { level: zlib.Z_BEST_COMPRESSION }),
      ]);
      // Kept only when it saves a tenth or more.
      if (br.length < body.length * 0.9) {
        file.br = br.length;
        await store(`${etag}.br`, br);
      }
      if (gz.length < body.length * 0.9) {
        file.gz = gz.length;
        await store(`${etag}.gz`, gz);
      }
    }
    await store(etag, body);
    files[`/${path}`] = file;
  }
  return { files, bytes, storedBytes };
}
