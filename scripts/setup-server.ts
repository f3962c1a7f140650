/**
 * npm run setup:server [-- --domain api.example.com --email you@example.com ...]: installs workyard as systemd
 * services on this server (root): a system user, units for PgBouncer, the Redis proxy and the supervisor, a
 * nightly backup timer, log retention, a Caddyfile for TLS, and /etc/workyard/env for settings and secrets.
 *   --dry-run      print every file and command, touch nothing
 *   --out <dir>    write the files into <dir> (at their server paths) instead, touch nothing else
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { findPgbouncer } from "../lib/node/data/pgbouncer.ts";
import { redactUrl } from "../lib/node/common/redact.ts";
import { installPlan, writePlanTo } from "../lib/node/ops/server-setup/apply.ts";
import { kebab, parseSetupOptions, setupOptionsSchema } from "../lib/node/ops/server-setup/options.ts";
import { formatPlan, setupPlan } from "../lib/node/ops/server-setup/plan.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const paths = projectWithEnv();
const names = Object.keys(setupOptionsSchema.shape).filter((k) => k !== "databaseUrl");
const usage =
  "usage: npm run setup:server [-- --domain api.example.com --email you@example.com ...] (as root)\n" +
  `  --dry-run (print every file and command, touch nothing), --out <dir> (write the files there), ${names.map((n) => `--${kebab(n)}`).join(", ")}\n` +
  "  docs/production.md says what each does.";
const { values } = cliArgs(
  {
    strict: true,
    options: {
      "dry-run": { type: "boolean" },
      out: { type: "string" },
      ...Object.fromEntries(names.map((n) => [kebab(n), { type: "string" as const }])),
    },
  },
  usage,
) as { values: Record<string, string | boolean | undefined> };

await runCommand(async () => {
  const given = Object.fromEntries(names.map((n) => [n, values[kebab(n)]]).filter(([, v]) => v !== undefined));
  const options = parseSetupOptions({
    root: paths.root,
    node: process.execPath,
    pgbouncerBin: findPgbouncer(),
    databaseUrl: process.env.DATABASE_URL,
    redisUrl: process.env.REDIS_URL || undefined,
    ...given,
  });
  if (!given.domain) console.warn("note: no --domain given: Caddy is set up for example.com; run again with --domain <your host name>");
  if (values["dry-run"]) {
    const redacted = { databaseUrl: options.databaseUrl && redactUrl(options.databaseUrl), redisUrl: redactUrl(options.redisUrl) };
    const plan = setupPlan({ ...options, ...redacted }, () => "GENERATED");
    console.log("setup:server --dry-run: this is what an install would do; nothing was written or run.\n");
    process.stdout.write(formatPlan(plan));
  } else if (typeof values.out === "string") {
    const written = await writePlanTo(setupPlan(options), values.out);
    console.log(`wrote ${written.length} files under ${values.out}:`);
    for (const f of written) console.log(`  ${f}`);
  } else {
    await installPlan(setupPlan(options), options.user, (line) => console.log(line));
  }
}, "setup:server: ");
