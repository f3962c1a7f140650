/**
 * The supervisor's collector (observe/collector.ts) as its own process, for the bench: workerd setups send it
 * their traces as they do under `npm start`, so their figures include what observability costs (and the
 * collector's CPU competes for the same cores, as it does in production). Run as
 * `node collector-server.ts <releaseDir>` with WORKYARD_COLLECTOR_TOKEN in its environment; prints
 * `{"port":N}` once it listens; SIGTERM or SIGINT stops it. It writes its request log to a temporary folder
 * it removes when it stops. It has no database: the usage counts it would add up every 10 s, and the 5xx answers it
 * would keep as errors (the outbound bench's open-breaker row answers 503 by design), are dropped (its "could not
 * record" lines are not printed), and the bench asks it for nothing else that needs one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readManifest } from "../releases/manifest.ts";
import { startCollector } from "../observe/collector.ts";

const [releaseDir] = process.argv.slice(2);
const token = process.env.WORKYARD_COLLECTOR_TOKEN;
if (!releaseDir || !token) {
  console.error("usage: WORKYARD_COLLECTOR_TOKEN=... node collector-server.ts <releaseDir>");
  process.exit(2);
}
const logDir = mkdtempSync(join(tmpdir(), "workyard-bench-collector-"));
process.once("exit", () => rmSync(logDir, { recursive: true, force: true }));
const collector = await startCollector({
  releaseDir,
  manifest: await readManifest(releaseDir),
  root: process.cwd(),
  // A refused port (see above).
  databaseUrl: "postgres://bench@127.0.0.1:1/unused",
  logTarget: "file",
  logFile: join(logDir, "requests.log"),
  token,
  log: (line) => {
    if (!line.startsWith("usage: could not record counts") && !line.startsWith("errors: could not record errors")) console.error(line);
  },
});
console.log(JSON.stringify({ port: Number(new URL(collector.url).port) }));

const stop = () => {
  setTimeout(() => process.exit(0), 2000).unref();
  void collector.stop().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
