/**
 * Import specifiers for generated entry modules. They are relative to the folder the entry is resolved from, so
 * the same project in another folder (a copy, a test project) generates byte-identical entries, and the bundle cache
 * (bundle-cache.ts), which checks every input's content, can reuse their bundles.
 */
import { relative, sep } from "node:path";

/** `file` as an import specifier from a module in `fromDir`: "./x.ts" or "../../lib/x.ts", with forward slashes. */
export function relativeImport(fromDir: string, file: string): string {
  const path = relative(fromDir, file).split(sep).join("/");
  return path.startsWith("../") ? path : `./${path}`;
}
