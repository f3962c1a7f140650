/** What `npm run dev` prints once it serves: the URL, the functions, the backends and the dev endpoints. */
import { relative } from "node:path";
import { redactUrl } from "../common/redact.ts";
import { describeToolchain, toolchain } from "../ops/toolchain/versions.ts";
import type { DevServer } from "./server.ts";

/** The lines printed at start, in the shape `npm start` uses. */
export function devBanner(server: DevServer, { readyMs, root }: { readyMs: number; root: string }): string[] {
  const db = server.database;
  const functions = server.functions();
  const fire = functions.find((f) => f.crons.length > 0);
  return [
    "",
    `workyard dev is serving ${server.url}  (ready in ${(readyMs / 1000).toFixed(1)} s, miniflare)`,
    `  ${describeToolchain(toolchain(root))}, miniflare ${toolchain(root).miniflare ?? "?"}`,
    ...functions.map((fn) => {
      const notes = [
        ...(fn.served ? [] : ["not built yet: see the error above"]),
        ...(fn.crons.length > 0 ? [`crons: ${fn.crons.join(", ")}`] : []),
        ...(fn.missingSecrets.length > 0
          ? [`missing secrets: ${fn.missingSecrets.join(", ")}; set them in .dev.vars or the environment`]
          : []),
      ];
      return `  ${server.url}/${fn.name}${notes.length > 0 ? `   (${notes.join("; ")})` : ""}`;
    }),
    "backends:",
    db.kind === "embedded-pglite"
      ? `  database: embedded PGlite (data in ${relative(root, db.dataDir) || db.dataDir}); set DATABASE_URL to use PostgreSQL`
      : `  database: PostgreSQL at ${redactUrl(db.url)}, directly (the dev server uses no PgBouncer)`,
    `  redis:    ${server.redis.label} through the Upstash-compatible proxy at ${server.redis.proxyUrl}${server.redis.kind === "memory" ? "; set REDIS_URL to use Redis" : ""}`,
    `dev endpoints (loopback only): ${server.devUrl}/__dev`,
    `  fire a cron: curl -X POST '${server.devUrl}/__dev/scheduled/${fire?.name ?? "<function>"}${fire ? `?cron=${encodeURIComponent(fire.crons[0] ?? "")}` : "?cron=..."}'`,
    "Watching functions/, lib/sdk/, lib/workers/, lib/shared/, wrangler.toml and .dev.vars: a save is served within a second. Ctrl-C stops.",
  ];
}
