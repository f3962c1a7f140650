/**
 * The names a function's own code requires through defineEnv (`defineEnv(z.object({ GREETING: z.string() }))`), found
 * by reading its sources at build, so that a var set nowhere is reported by the build and at start (naming the
 * function, the name and where to set it) instead of as a 500 `misconfigured` on every request. A key whose schema
 * ends in .optional(), .default(...), .nullish() or .catch(...) is not required. Only what can be read without running
 * the code is found: a schema held in a variable of the same file is followed, one built elsewhere (another module, a
 * spread, a computed key) is skipped, and the SDK still checks every name at the first request.
 */
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { parse } from "acorn";
import type { CallExpression, Expression, Node, ObjectExpression, Pattern, SpreadElement } from "acorn";
import { simple } from "acorn-walk";
import { transform } from "esbuild";

/** Each source extension and how esbuild reads it. */
const LOADERS = { ".ts": "ts", ".mts": "ts", ".tsx": "tsx", ".js": "js", ".mjs": "js", ".jsx": "jsx" } as const;
const loaderOf = (file: string) => LOADERS[extname(file) as keyof typeof LOADERS] as (typeof LOADERS)[keyof typeof LOADERS] | undefined;
const NOT_REQUIRED = new Set(["optional", "default", "nullish", "catch", "prefault"]);

/** Every source file of a function's folder (its own modules, not packages). */
async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && loaderOf(e.name) && !e.parentPath.includes("node_modules") && !/\.test\.\w+$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/** `z.object({...})` (or `object({...})`): its literal argument. */
function objectSchema(node: Expression | SpreadElement | undefined): ObjectExpression | undefined {
  if (node?.type !== "CallExpression") return undefined;
  const callee = node.callee;
  const name =
    callee.type === "MemberExpression" && callee.property.type === "Identifier"
      ? callee.property.name
      : callee.type === "Identifier"
        ? callee.name
        : "";
  const [first] = node.arguments;
  return (name === "object" || name === "strictObject" || name === "looseObject") && first?.type === "ObjectExpression" ? first : undefined;
}

/** True when a key's schema, read outward from its last call, makes it optional. */
function optional(node: Expression | Pattern): boolean {
  let at: Node = node;
  while (at.type === "CallExpression") {
    const { callee } = at as CallExpression;
    if (callee.type !== "MemberExpression") return false;
    if (callee.property.type === "Identifier" && NOT_REQUIRED.has(callee.property.name)) return true;
    at = callee.object;
  }
  return false;
}

/** The required names the defineEnv calls in one module's code read. */
export function requiredEnvNames(code: string): string[] {
  const ast = parse(code, { ecmaVersion: "latest", sourceType: "module" });
  const declared = new Map<string, Expression>();
  simple(ast, {
    VariableDeclarator(node) {
      if (node.id.type === "Identifier" && node.init) declared.set(node.id.name, node.init);
    },
  });
  const names = new Set<string>();
  simple(ast, {
    CallExpression(node) {
      const callee = node.callee;
      const isDefineEnv =
        (callee.type === "Identifier" && callee.name === "defineEnv") ||
        (callee.type === "MemberExpression" && callee.property.type === "Identifier" && callee.property.name === "defineEnv");
      if (!isDefineEnv) return;
      const [arg] = node.arguments;
      const schema = objectSchema(arg?.type === "Identifier" ? declared.get(arg.name) : arg);
      for (const p of schema?.properties ?? []) {
        if (p.type !== "Property" || p.computed) continue;
        const key =
          p.key.type === "Identifier" ? p.key.name : p.key.type === "Literal" && typeof p.key.value === "string" ? p.key.value : undefined;
        if (key !== undefined && !optional(p.value)) names.add(key);
      }
    },
  });
  return [...names];
}

/** The names a function's code requires through defineEnv, across its folder's modules, sorted. */
export async function requiredEnv(dir: string): Promise<string[]> {
  const names = new Set<string>();
  for (const file of await sourceFiles(dir)) {
    const source = await readFile(file, "utf8");
    if (!source.includes("defineEnv")) continue;
    // Type syntax out (esbuild, as the bundle does); a file that does not compile is the bundler's to report.
    const js = await transform(source, { loader: loaderOf(file), format: "esm" }).catch(() => undefined);
    if (!js) continue;
    for (const name of requiredEnvNames(js.code)) names.add(name);
  }
  return [...names].sort();
}

/** The required names nothing sets: neither a var of the function's (merged) config nor a secret it declares. */
export const unsetEnv = (required: string[], vars: Record<string, unknown>, secrets: string[]) =>
  required.filter((name) => !(name in vars) && !secrets.includes(name));

/** What to tell an operator about the names `fn` requires that nothing sets, or nothing when all are set. */
export function unsetEnvAdvice(fn: { name: string; unsetEnv?: string[] }): string | undefined {
  const names = fn.unsetEnv ?? [];
  if (names.length === 0) return undefined;
  const list = names.join(", ");
  return (
    `functions/${fn.name} requires ${list} (defineEnv) but nothing sets ${names.length === 1 ? "it" : "them"}: add ${list} under [vars] in ` +
    `functions/${fn.name}/wrangler.toml (or the top-level wrangler.toml), or declare ${names.length === 1 ? "it a secret" : "them secrets"} ` +
    `([secrets] required) and set ${names.length === 1 ? "it" : "them"} in .env; until then every request answers 500 misconfigured`
  );
}

/** One `warning: ...` line per function of a release that requires a name nothing sets (build, deploy, start print them). */
export const unsetEnvWarnings = (functions: readonly { name: string; unsetEnv?: string[] }[]): string[] =>
  functions.flatMap((fn) => {
    const advice = unsetEnvAdvice(fn);
    return advice ? [`warning: ${advice}`] : [];
  });
