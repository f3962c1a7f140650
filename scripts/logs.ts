/**
 * npm run logs [-- <function>] [--level debug|info|warn|error] [--status 5xx|404|...] [--tail N] [--no-follow] [--json]
 * Follows the request log of the running workyard (`npm start`): one line per request and per console.*
 * line of a function, with its request id.
 */
import { formatLine } from "../lib/node/observe/log-format.ts";
import type { LogLine } from "../lib/node/observe/records.ts";
import { readObserveInfo } from "../lib/node/observe/run-info.ts";
import { projectPaths } from "../lib/node/common/paths.ts";
import { UserError } from "../lib/node/common/user-error.ts";
import { cliArgs } from "../lib/node/cli/args.ts";
import { runCommand } from "../lib/node/cli/run.ts";

const usage =
  "usage: npm run logs [-- <function>] [--level debug|info|warn|error] [--status 5xx|404|...] [--tail N] [--no-follow] [--json]\n" +
  "  Follows the request log of the running workyard (npm start): one line per request and per console line, with its request id.";
const args = () =>
  cliArgs(
    {
      allowPositionals: true,
      options: {
        level: { type: "string" },
        status: { type: "string" },
        tail: { type: "string", default: "20" },
        "no-follow": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
    },
    usage,
  );

await runCommand(async () => {
  const { values, positionals } = args();
  if (positionals.length > 1) throw new UserError("Name at most one function: npm run logs -- <function>");
  const info = await readObserveInfo(projectPaths(process.env.WORKYARD_ROOT));
  const url = new URL("/logs", info.collectorUrl);
  if (positionals[0]) url.searchParams.set("function", positionals[0]);
  if (values.level) url.searchParams.set("level", values.level);
  if (values.status) url.searchParams.set("status", values.status);
  url.searchParams.set("tail", values.tail);
  if (!values["no-follow"]) url.searchParams.set("follow", "1");
  const res = await fetch(url, { headers: { authorization: `Bearer ${info.collectorToken}` } });
  if (!res.ok || !res.body) {
    const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
    throw new UserError(body.error?.message ?? `the collector answered ${res.status}`);
  }
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of res.body) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = lines.pop() ?? "";
    for (const text of lines) {
      if (text.trim() === "") continue;
      console.log(values.json ? text : formatLine(JSON.parse(text) as LogLine));
    }
  }
  if (!values["no-follow"]) throw new UserError("workyard stopped: the log stream ended");
});
