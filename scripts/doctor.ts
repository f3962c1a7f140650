/**
 * npm run doctor: which Node, workerd, Wrangler and miniflare the project runs on, how old they are, whether
 * they still get security fixes, and what the registry has that is newer. Exits 1 when something is missing or
 * unsupported (an end-of-life Node, a workerd that does not run, a compatibility date it does not support).
 */
import { cliArgs } from "../lib/node/cli/args.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";
import { runCommand } from "../lib/node/cli/run.ts";
import { doctor, formatChecks } from "../lib/node/ops/toolchain/doctor.ts";

const USAGE = `usage: npm run doctor [-- --offline] [-- --json]

  --offline   do not ask the npm registry what is newer
  --json      print the checks as JSON
  --help      this text`;

const { values } = cliArgs(
  { options: { offline: { type: "boolean" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } } },
  USAGE,
);
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
await runCommand(async () => {
  const paths = projectWithEnv();
  const registry = values.offline ? undefined : (process.env.npm_config_registry ?? "https://registry.npmjs.org/");
  const today = new Date().toISOString().slice(0, 10);
  const checks = await doctor({ paths, env: process.env, today, registry });
  console.log(values.json ? JSON.stringify({ today, checks }, null, 2) : `workyard doctor, ${today}\n\n${formatChecks(checks)}`);
  return checks.some((c) => c.status === "fail") ? 1 : 0;
});
