/**
 * One worker's bundle in dev: an esbuild incremental context, rebuilt on demand, that keeps the last good
 * script (a failed rebuild leaves it serving) and the files it was built from (to know which saves
 * concern it).
 */
import { resolve } from "node:path";
import type { BuildContext, Message } from "esbuild";
import { UserError } from "../common/user-error.ts";
import { loadEsbuild, workerBuildOptions } from "./esbuild.ts";
import type { WorkerBuildSettings } from "./esbuild.ts";

export interface Bundle {
  /** The bundled ES module, with an inline source map. */
  script: string;
  /** Absolute paths of every source file in the bundle. */
  inputs: Set<string>;
}

export class DevBuildError extends UserError {
  readonly worker: string;
  readonly problems: string[];
  /** The files the problems are in, relative to the project root ("functions/hello/index.ts"). */
  readonly files: string[];

  constructor(worker: string, problems: string[], files: string[] = []) {
    super(`${worker} failed to build:\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.worker = worker;
    this.problems = problems;
    this.files = files;
  }
}

/** "functions/hello/index.ts:3:14: Expected ";" but found "x"", with the offending line under it. */
export function formatMessage(message: Message): string {
  const where = message.location;
  if (!where) return message.text;
  const head = `${where.file}:${where.line}:${where.column + 1}: ${message.text}`;
  return where.lineText ? `${head}\n    ${where.lineText.trim()}` : head;
}

export class WorkerBundler {
  #context: Promise<BuildContext> | undefined;
  #good: Bundle | undefined;
  /** Files of the last attempt, good or not (a failed build still knows the entry it failed in). */
  #watched = new Set<string>();

  readonly worker: string;
  private readonly settings: WorkerBuildSettings;

  constructor(worker: string, settings: WorkerBuildSettings) {
    this.worker = worker;
    this.settings = settings;
  }

  /** The last bundle that built. */
  get current(): Bundle | undefined {
    return this.#good;
  }

  /** True when a change to `file` (absolute, real path) can change this bundle. */
  uses(file: string): boolean {
    return this.#watched.has(file) || (this.#good?.inputs.has(file) ?? false);
  }

  /** Rebuilds; returns the new bundle, or throws DevBuildError and keeps the last good one. */
  async rebuild(): Promise<Bundle> {
    this.#context ??= loadEsbuild().then((esbuild) => esbuild.context(workerBuildOptions(this.settings)));
    const context = await this.#context;
    const root = this.settings.root;
    try {
      const result = await context.rebuild();
      const output = result.outputFiles?.find((f) => f.path.endsWith(".js"));
      if (!output) throw new DevBuildError(this.worker, ["esbuild wrote no JavaScript output"]);
      const inputs = new Set(Object.keys(result.metafile?.inputs ?? {}).map((f) => resolve(root, f)));
      this.#watched = inputs;
      const entry = Object.values(result.metafile?.outputs ?? {}).find((o) => o.entryPoint !== undefined);
      if (entry?.entryPoint !== undefined && !entry.exports.includes("default")) {
        // workerd would start such a module, then answer every call with an opaque "internal error; reference = ..."
        // (its log: "Failed to get handler to worker"). An editor that writes a file in place shows it empty for a
        // moment, so ordinary saves meet this too; the save that completes it builds again.
        const file = typeof this.settings.entry === "object" ? this.settings.entry.sourcefile : entry.entryPoint;
        throw new DevBuildError(
          this.worker,
          [`${file}: no default export: a worker's module must export its handler (export default app)`],
          [file],
        );
      }
      this.#good = { script: output.text, inputs };
      return this.#good;
    } catch (err) {
      if (err instanceof DevBuildError) throw err;
      const errors = (err as { errors?: Message[] }).errors;
      if (!errors) throw err;
      for (const m of errors) if (m.location) this.#watched.add(resolve(root, m.location.file));
      const files = [...new Set(errors.flatMap((m) => (m.location ? [m.location.file] : [])))];
      throw new DevBuildError(this.worker, errors.map(formatMessage), files); // paths are relative to the project root
    }
  }

  async dispose(): Promise<void> {
    const context = this.#context;
    this.#context = undefined;
    if (context) await (await context).dispose();
  }
}
