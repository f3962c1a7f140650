/**
 * Source-mapping stack traces from workerd back to the TypeScript sources, with the source maps Wrangler
 * writes beside each bundle in the release folder (upload_source_maps = true). workerd names each module
 * as the config does ("index.js" for a function, "gateway.js" for the gateway), so a frame is resolved
 * against the bundle of the worker that was traced, or the gateway's.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import type { Manifest } from "../releases/manifest.ts";

export interface MappedStack {
  /** The stack with each frame the maps cover rewritten to `path/to/file.ts:line:column`. */
  stack: string;
  /** The first frame in the project's own code (not node_modules), e.g. "functions/boom/index.ts:6:11". */
  location: string | null;
}

// "    at Object.fetch (index.js:1:234)" or "    at index.js:1:234"
const FRAME = /^(\s*at\s+(?:(.*?)\s+\()?)((?:[^\s()]*\/)?([^\s/()]+\.m?js)):(\d+):(\d+)(\)?)\s*$/;

export class SourceMapper {
  private readonly maps = new Map<string, TraceMap | null>();

  private releaseDir: string;
  private manifest: Manifest;
  /** The project's root: mapped paths are shown relative to it. */
  private readonly root: string;

  constructor(releaseDir: string, manifest: Manifest, root: string) {
    this.releaseDir = releaseDir;
    this.manifest = manifest;
    this.root = root;
  }

  /** Maps with another release's bundles from now on (after a deploy or rollback). */
  use(releaseDir: string, manifest: Manifest): void {
    this.releaseDir = releaseDir;
    this.manifest = manifest;
    this.maps.clear();
  }

  /** The bundle (path in the release) a frame's file name refers to, for a trace of `worker`. */
  private bundleFor(worker: string, file: string): string | undefined {
    for (const system of ["gateway", "internal", "tail"] as const) {
      if (file === `${system}.js`) return this.manifest[system]?.module;
    }
    return this.manifest.functions.find((f) => f.name === worker)?.module;
  }

  private map(bundle: string): TraceMap | null {
    if (!this.maps.has(bundle)) {
      const file = join(this.releaseDir, `${bundle}.map`);
      let map: TraceMap | null = null;
      if (existsSync(file)) {
        try {
          map = new TraceMap(readFileSync(file, "utf8"), join(this.releaseDir, bundle));
        } catch {
          map = null;
        }
      }
      this.maps.set(bundle, map);
    }
    return this.maps.get(bundle) ?? null;
  }

  private show(source: string, bundle: string): string {
    const absolute = isAbsolute(source) ? source : resolve(dirname(join(this.releaseDir, bundle)), source);
    const rel = relative(this.root, absolute);
    return rel.startsWith("..") ? absolute : rel;
  }

  /** Rewrites the frames of `stack` (from a trace of `worker`) that the release's maps cover. */
  mapStack(worker: string, stack: string): MappedStack {
    let location: string | null = null;
    const lines = stack.split("\n").map((line) => {
      const m = FRAME.exec(line);
      if (!m) return line;
      const [, prefix = "", , , file = "", lineNo = "0", column = "0", close = ""] = m;
      const bundle = this.bundleFor(worker, file);
      const map = bundle ? this.map(bundle) : null;
      if (!bundle || !map) return line;
      const pos = originalPositionFor(map, { line: Number(lineNo), column: Number(column) - 1 });
      if (pos.source === null || pos.line === null) return line;
      const where = `${this.show(pos.source, bundle)}:${pos.line}:${(pos.column ?? 0) + 1}`;
      if (location === null && !where.includes("node_modules/")) location = where;
      // The function names stay as the bundle has them (a map's name at a call site is the callee's).
      return `${prefix}${where}${close}`;
    });
    return { stack: lines.join("\n"), location };
  }
}
