/**
 * `npm install` runs this (npm's `prepare` script) to do a fresh clone's slow first-start work ahead of
 * `npm start`: it builds the release and, when DATABASE_URL is not set, creates the embedded database and
 * applies the migrations. Both are only ever done once: `npm start` reuses an unchanged release and an
 * existing database. It never fails the install: a problem is printed and left to `npm start`, which does
 * the same work and reports it in full. WORKYARD_SKIP_PREPARE=1 skips it.
 */
import { build } from "../lib/node/build/build.ts";
import { startMigratedEmbeddedPostgres } from "../lib/node/data/embedded-postgres.ts";
import { projectWithEnv } from "../lib/node/cli/serve.ts";

if (process.env.WORKYARD_SKIP_PREPARE === "1") process.exit(0);

const paths = projectWithEnv();
const started = performance.now();
const log = (line: string) => console.log(`workyard: ${line}`);
const seconds = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;

log(
  `preparing the first start: building the release${process.env.DATABASE_URL ? "" : " and creating the embedded database"} (a minute or two the first time; WORKYARD_SKIP_PREPARE=1 skips it)`,
);
const [release, database] = await Promise.allSettled([
  build(paths, { log }).then((r) => log(`${r.reused ? "release unchanged" : "built release"} ${r.manifest.id} (${seconds()})`)),
  process.env.DATABASE_URL
    ? Promise.resolve()
    : (log(`creating the embedded database in ${paths.embeddedDb}...`),
      startMigratedEmbeddedPostgres(paths.embeddedDb, paths.migrations, log)).then(async (db) => {
        await db.stop();
        log(`embedded database ready in ${paths.embeddedDb} (${seconds()})`);
      }),
]);
for (const [what, result] of [
  ["the build", release],
  ["the embedded database", database],
] as const) {
  if (result.status === "rejected") {
    log(`${what} did not finish here, npm start will try again and report it: ${(result.reason as Error).message.split("\n")[0] ?? ""}`);
  }
}
