/**
 * Static assets (Wrangler's `[assets]`): what the build writes for a function's asset folder and what the assets
 * worker inside workerd reads. The names and shapes both sides use.
 */

/** How paths map to HTML files: Wrangler's `assets.html_handling`. */
export const HTML_HANDLING = ["auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none"] as const;
export type HtmlHandling = (typeof HTML_HANDLING)[number];

/** What a path with no asset gets: Wrangler's `assets.not_found_handling`. */
export const NOT_FOUND_HANDLING = ["single-page-application", "404-page", "none"] as const;
export type NotFoundHandling = (typeof NOT_FOUND_HANDLING)[number];

/** One file of the folder, by its path from the folder's root ("/index.html"). */
export interface AssetFile {
  /** Its content hash (hex): the ETag, and the name it is stored under in the release. */
  etag: string;
  /** Content-Type, with a charset for text. */
  type: string;
  size: number;
  /** Sizes of the precompressed copies stored beside it (`<etag>.br`, `<etag>.gz`), when they are smaller. */
  br?: number;
  gz?: number;
  /** A fingerprinted name (a content hash in it, as a bundler writes): cached for a year, never revalidated. */
  immutable?: boolean;
}

/** The manifest the assets worker gets as a binding: every file, and how to route. */
export interface AssetsManifest {
  files: Record<string, AssetFile>;
  htmlHandling: HtmlHandling;
  notFoundHandling: NotFoundHandling;
  /** The function has its own code: a path with no asset goes to it (SPA navigations excepted). */
  hasWorker: boolean;
  /** Content-Security-Policy of HTML answers. */
  contentSecurityPolicy: string;
}

/** Set on the assets worker's answer when no asset matched and the function's code should answer instead. */
export const NO_ASSET_HEADER = "x-workyard-no-asset";

/** The folder in a release that holds each function's stored asset files: `<release>/assets/<function>/<etag>`. */
export const RELEASE_ASSETS_DIR = "assets";

/**
 * The policy HTML assets get unless the function sets its own: what a page built by a bundler needs (its own scripts,
 * styles, images, fonts and API calls), nothing from elsewhere, no inline script, no framing.
 */
export const DEFAULT_ASSETS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
  "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
