/**
 * The gateway's entry module, for the build and for `npm run dev`: the gateway with the handlers of the
 * functions that run in its isolate (`isolate = false`), which share its compatibility date and run under
 * the union of their compatibility flags.
 */
import { join } from "node:path";
import type { FunctionSource } from "./functions.ts";
import { ConfigError } from "./wrangler-config.ts";
import { withNodejsCompat } from "./nodejs-compat.ts";
import { relativeImport } from "./relative-import.ts";

export interface GatewayEntry {
  contents: string;
  sourcefile: string;
  compatibilityFlags: string[];
}

/** Functions served in the gateway's isolate. */
export const inlineFunctions = (functions: FunctionSource[]) => functions.filter((f) => f.route.isolate === false);

/**
 * The generated entry for these in-isolate functions, importing by absolute paths, or relative to `fromDir` (where the
 * build writes it); throws ConfigError for one with its own compatibility date.
 */
export function gatewayEntry(root: string, compatibilityDate: string, inline: FunctionSource[], fromDir?: string): GatewayEntry {
  const from = (file: string) => JSON.stringify(fromDir === undefined ? file : relativeImport(fromDir, file));
  const conflicting = inline.filter((f) => f.config.compatibility_date !== compatibilityDate);
  if (conflicting.length > 0) {
    throw new ConfigError(
      `${conflicting.map((f) => `functions/${f.name}`).join(", ")}: a function with isolate = false runs in the gateway's ` +
        "isolate and uses the shared compatibility_date; remove its own, or let it keep its own isolate.",
    );
  }
  const lines = [
    "// Generated: the gateway with the functions that run in its isolate (isolate = false).",
    `import { createFunctionCall, createGateway } from ${from(join(root, "lib/workers/gateway.ts"))};`,
    ...inline.map((f, i) => `import fn${i} from ${from(f.entry)};`),
    `const inline = { ${inline.map((f, i) => `${JSON.stringify(f.name)}: fn${i}`).join(", ")} };`,
    "export default createGateway(inline);",
    // What functions' [[services]] bindings reach (serve-config.ts functionCallBinding).
    "export const FunctionCall = createFunctionCall(inline);",
    // The entrypoint the internal worker drains this process through before it is replaced (drain.ts).
    `export { drainControl as control } from ${from(join(root, "lib/workers/drain.ts"))};`,
  ];
  return {
    contents: `${lines.join("\n")}\n`,
    sourcefile: "gateway.entry.ts",
    // Node.js built-ins: the gateway keeps each request's console lines apart with AsyncLocalStorage.
    compatibilityFlags: withNodejsCompat(compatibilityDate, [...new Set(inline.flatMap((f) => f.config.compatibility_flags))]),
  };
}
