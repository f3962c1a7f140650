/**
 * A project served as `npm start` serves it (startSupervisor: the build, PgBouncer, the Redis proxy, workerd), as a
 * process of its own for the bench, on the project at WORKYARD_BENCH_PROJECT (not the repository's own). Its settings
 * come from the environment as npm start's do (DATABASE_URL, REDIS_URL, WORKERD_PROCESSES, AUTH_JWT_SECRET ...).
 * Prints `{"port":N}` once it serves on a free loopback port; SIGTERM or SIGINT stops it.
 */
import { projectPaths } from "../common/paths.ts";
import { startSupervisor } from "../runtime/supervisor.ts";

const root = process.env.WORKYARD_BENCH_PROJECT;
if (!root) {
  console.error("usage: WORKYARD_BENCH_PROJECT=<project folder> node supervisor-server.ts");
  process.exit(2);
}
const sup = await startSupervisor({
  paths: projectPaths(root),
  host: "127.0.0.1",
  port: 0,
  env: process.env,
  serve: "sources",
  log: (line) => console.error(line),
});
console.log(JSON.stringify({ port: new URL(sup.url).port ? Number(new URL(sup.url).port) : 80 }));

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 15_000).unref();
  void sup.stop().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
