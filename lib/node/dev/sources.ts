/**
 * What `npm run dev` serves, kept current: the functions found under functions/ with their merged
 * configs, one bundler per function plus the gateway's, and the values in .dev.vars. `rebuild(files)`
 * rebuilds only the bundles that a set of saved files can change.
 */
import { realpathSync } from "node:fs";
import { join, sep } from "node:path";
import { checkCrons } from "../cron/crons.ts";
import { discoverFunctions } from "../build/functions.ts";
import type { FunctionSource } from "../build/functions.ts";
import type { ProjectPaths } from "../common/paths.ts";
import { describeFailure } from "../common/user-error.ts";
import { readSharedConfig } from "../build/wrangler-config.ts";
import { serviceName } from "../build/serve-config.ts";
import { DevBuildError, WorkerBundler } from "./bundler.ts";
import { readDevVars } from "./dev-vars.ts";
import { gatewayEntry, inlineFunctions } from "../build/gateway-entry.ts";
import { GATEWAY_WORKER } from "./worker-options.ts";

interface FunctionState {
  source: FunctionSource;
  bundler: WorkerBundler;
  /** Real path of the function's folder with a trailing separator: any save below it concerns it. */
  dirPrefix: string;
}

export interface RebuildResult {
  /** Build problems, one message per failing worker; those keep their last good bundle. */
  errors: string[];
  /** The bundlers that failed ("gateway", "hello") and the files their problems are in. */
  failed: Map<string, string[]>;
  /** The bundlers that built. */
  built: string[];
  ms: number;
}

/** The folder each worker's bundle would live in (nothing is written: source map paths are relative to it). */
export const bundleDir = (paths: ProjectPaths, worker: string) => join(paths.work, "dev", worker);

const bundlerKey = (fn: FunctionSource) => JSON.stringify([fn.entry, fn.config.compatibility_date, fn.config.compatibility_flags]);

/** One message per distinct failure: an in-isolate function's error is also the gateway's. */
function describe(failures: unknown[]): string[] {
  const byProblems = new Map<string, DevBuildError[]>();
  const other: string[] = [];
  for (const err of failures) {
    if (!(err instanceof DevBuildError)) other.push(describeFailure(err));
    else byProblems.set(JSON.stringify(err.problems), [...(byProblems.get(JSON.stringify(err.problems)) ?? []), err]);
  }
  const grouped = [...byProblems.values()].map(
    (same) => new DevBuildError(same.map((e) => e.worker).join(", "), same[0]?.problems ?? []).message,
  );
  return [...grouped, ...other];
}

export class DevSources {
  readonly #paths: ProjectPaths;
  /** The project root with symlinks resolved: esbuild reports real paths, relative to it. */
  readonly root: string;
  readonly #functions = new Map<string, FunctionState>();
  #gateway: WorkerBundler | undefined;
  /** What the gateway's bundler was made for: its generated entry and flags. */
  #gatewayKey = "";
  devVars: Record<string, string> = {};
  /** The gateway's compatibility date (the shared wrangler.toml's) and flags (those of the functions in its isolate). */
  gatewaySettings = { compatibilityDate: "", compatibilityFlags: [] as string[] };

  private constructor(paths: ProjectPaths) {
    this.#paths = paths;
    this.root = realpathSync(paths.root);
  }

  /**
   * Reads the functions and .dev.vars and builds every bundle. Bad config or a gateway that does not build
   * throws; a function that does not build is reported in `errors` and not served until a save fixes it.
   */
  static async load(paths: ProjectPaths): Promise<{ sources: DevSources; errors: string[]; failed: Map<string, string[]> }> {
    const sources = new DevSources(paths);
    await sources.refresh();
    const [gateway, functions] = await Promise.allSettled([
      sources.#gateway?.rebuild(),
      sources.#build([...sources.#functions.values()].map((s) => s.bundler)),
    ]);
    if (gateway.status === "rejected" || functions.status === "rejected") {
      await sources.dispose();
      throw gateway.status === "rejected" ? gateway.reason : (functions as PromiseRejectedResult).reason;
    }
    return { sources, errors: functions.value.errors, failed: functions.value.failed };
  }

  /** The functions, sorted by name. */
  get functions(): FunctionSource[] {
    return [...this.#functions.values()].map((s) => s.source);
  }

  /** The last good script of each worker that has one, by worker name ("gateway", "fn-hello"). */
  scripts(): Map<string, string> {
    const scripts = new Map<string, string>();
    if (this.#gateway?.current) scripts.set(GATEWAY_WORKER, this.#gateway.current.script);
    for (const { source, bundler } of this.#functions.values()) {
      if (bundler.current) scripts.set(serviceName(source), bundler.current.script);
    }
    return scripts;
  }

  /**
   * Re-reads the list of functions, their wrangler.toml files and .dev.vars; adds and drops functions and
   * re-creates the bundler of one whose entry or compatibility flags changed, and the gateway's when the
   * functions in its isolate change. Returns the new bundlers. Throws (changing nothing) on bad config.
   */
  async refresh(): Promise<WorkerBundler[]> {
    const shared = await readSharedConfig(this.#paths.sharedConfig);
    const next = await discoverFunctions(this.#paths.functions, this.#paths.sharedConfig);
    checkCrons(next.map((f) => ({ name: f.name, crons: f.config.triggers?.crons ?? [] })));
    const entry = gatewayEntry(this.root, shared.compatibility_date, inlineFunctions(next));
    this.devVars = await readDevVars(this.root);
    this.gatewaySettings = { compatibilityDate: shared.compatibility_date, compatibilityFlags: entry.compatibilityFlags };
    const fresh: WorkerBundler[] = [];
    const gatewayKey = JSON.stringify(entry);
    if (gatewayKey !== this.#gatewayKey) {
      await this.#gateway?.dispose();
      this.#gateway = new WorkerBundler(GATEWAY_WORKER, {
        root: this.root,
        entry,
        outdir: bundleDir(this.#paths, GATEWAY_WORKER),
        compatibilityDate: shared.compatibility_date,
        compatibilityFlags: entry.compatibilityFlags,
      });
      this.#gatewayKey = gatewayKey;
      fresh.push(this.#gateway);
    }
    for (const [name, state] of this.#functions) {
      if (next.some((s) => s.name === name)) continue;
      this.#functions.delete(name);
      await state.bundler.dispose();
    }
    for (const source of next) {
      const old = this.#functions.get(source.name);
      if (old && bundlerKey(old.source) === bundlerKey(source)) {
        old.source = source;
        continue;
      }
      await old?.bundler.dispose();
      const state: FunctionState = {
        source,
        dirPrefix: `${realpathSync(source.dir)}${sep}`,
        bundler: new WorkerBundler(source.name, {
          root: this.root,
          entry: source.entry,
          outdir: bundleDir(this.#paths, serviceName(source)),
          compatibilityDate: source.config.compatibility_date,
          compatibilityFlags: source.config.compatibility_flags,
        }),
      };
      this.#functions.set(source.name, state);
      fresh.push(state.bundler);
    }
    // Keep the map in name order, as discovery returns it.
    const ordered = next.flatMap((s) => this.#functions.get(s.name) ?? []);
    this.#functions.clear();
    for (const state of ordered) this.#functions.set(state.source.name, state);
    return fresh;
  }

  /**
   * Rebuilds the bundles that `files` (real, absolute paths) can change, those in `also`, and those that
   * have never built. A function's bundle is concerned by the files it was built from and by anything
   * saved in its own folder.
   */
  rebuild(files: string[], also: WorkerBundler[] = []): Promise<RebuildResult> {
    const concerned = (bundler: WorkerBundler, prefix?: string) =>
      also.includes(bundler) || !bundler.current || files.some((f) => bundler.uses(f) || (prefix !== undefined && f.startsWith(prefix)));
    const gateway = this.#gateway;
    return this.#build([
      ...(gateway && concerned(gateway) ? [gateway] : []),
      ...[...this.#functions.values()].filter((s) => concerned(s.bundler, s.dirPrefix)).map((s) => s.bundler),
    ]);
  }

  async #build(bundlers: WorkerBundler[]): Promise<RebuildResult> {
    const started = performance.now();
    const results = await Promise.allSettled(bundlers.map((b) => b.rebuild()));
    const errors = describe(results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : [])));
    const failed = new Map<string, string[]>();
    const built: string[] = [];
    results.forEach((r, i) => {
      const worker = bundlers[i]?.worker ?? "";
      if (r.status === "fulfilled") built.push(worker);
      else failed.set(worker, r.reason instanceof DevBuildError ? r.reason.files : []);
    });
    return { errors, failed, built, ms: Math.round(performance.now() - started) };
  }

  async dispose(): Promise<void> {
    await Promise.all([this.#gateway?.dispose(), ...[...this.#functions.values()].map((s) => s.bundler.dispose())]);
  }
}
