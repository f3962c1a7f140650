/**
 * The API surface rows (issue #20): the same data, one link by its code with its click count, asked of the real
 * functions as `npm start` serves them (the supervisor as a process of its own, supervisor-server.ts: workerd
 * processes one per core, its own PgBouncer in front of a scratch database, the Redis proxy on its in-memory backend):
 *   - REST: GET /links/<code>/stats
 *   - GraphQL: POST /graphql { link(code) { code url clicks createdAt expiresAt } } with the code as a variable
 *   - GraphQL by persisted operation: the same query sent as its documentId (no document to read)
 * Both read the link with one query and the pending clicks with one Redis round trip (functions/links/data.ts), so
 * the ratio prices GraphQL itself: Yoga's request handling, the limits and the executor. The CPU column counts the
 * supervisor, workerd, PgBouncer and the Redis proxy (PostgreSQL is not a child of the bench).
 */
import { createHash, randomBytes } from "node:crypto";
import { cp, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import type { ProjectPaths } from "../common/paths.ts";
import { migrateUp } from "../data/migrations.ts";
import { startChildServer } from "./child-server.ts";
import { createScratchDatabase, findPostgres } from "./database.ts";
import { linkBenchProject, Teardown } from "./project.ts";
import type { Comparison, RunningScenario, Scenario } from "./scenario.ts";

export const API_REST = "link by code via REST, GET /links/:code/stats (npm start)";
export const API_GRAPHQL = "link by code via GraphQL, POST /graphql (npm start)";
export const API_PERSISTED = "link by code via GraphQL, persisted operation (npm start)";
export const API_GRAPHQL_GET = "link by code via GraphQL, GET /graphql?query= (npm start)";
export const API_PERSISTED_GET = "link by code via GraphQL, persisted operation as a GET (npm start)";

const CODE = "bench-link";
const supervisorEntry = fileURLToPath(new URL("./supervisor-server.ts", import.meta.url));
const QUERY = "query LinkByCode($code: String!) { link(code: $code) { code url clicks createdAt expiresAt } }";
/** Functions the bench project holds: graphql reads the links' data module. */
const FUNCTIONS = ["links", "graphql"];

export interface ApiSurfaceBenchOptions {
  paths: ProjectPaths;
  onLine: (source: string, line: string) => void;
  log: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** A project of the bench's own with copies of the real links and graphql functions (fresh each run). */
async function prepareProject(paths: ProjectPaths): Promise<string> {
  const root = join(paths.work, "bench", "api-surface-project");
  await rm(join(root, "functions"), { recursive: true, force: true });
  for (const fn of FUNCTIONS) {
    await mkdir(join(root, "functions"), { recursive: true });
    await cp(join(paths.functions, fn), join(root, "functions", fn), { recursive: true });
  }
  await linkBenchProject(paths, root);
  return root;
}

/** Sends the scenario's request once: it must answer the link (a GraphQL error answers 200 too). */
async function checkAnswers({ url, request }: Pick<RunningScenario, "url" | "request">): Promise<void> {
  const res = await fetch(url, { ...request, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const body = JSON.parse(text) as { code?: string; data?: { link?: { code?: string } } };
  if (res.status !== 200 || (body.code ?? body.data?.link?.code) !== CODE) {
    throw new Error(`${request?.method ?? "GET"} ${url} did not answer the link: ${res.status} ${text.slice(0, 300)}`);
  }
}

/** The API surface scenarios, or none (with the reason logged) when there is no PostgreSQL to seed a database in. */
export async function apiSurfaceBench({ paths, onLine, log, env = process.env }: ApiSurfaceBenchOptions): Promise<{
  scenarios: Scenario[];
  comparisons: Comparison[];
}> {
  const found = await findPostgres(paths, env, log);
  if ("skip" in found) {
    log(`API surface rows skipped: ${found.skip}`);
    return { scenarios: [], comparisons: [] };
  }
  const adminUrl = found.url;
  let project: Promise<string> | undefined;

  function scenario(name: string, request: (base: string) => Pick<RunningScenario, "url" | "request">): Scenario {
    return {
      name,
      async start(): Promise<RunningScenario> {
        const teardown = new Teardown();
        try {
          const root = await (project ??= prepareProject(paths));
          const scratch = await createScratchDatabase(adminUrl);
          teardown.add(scratch.drop);
          await migrateUp(scratch.url, join(root, "migrations"));
          const sql = postgres(scratch.url, { max: 1, onnotice: () => {} });
          await sql`insert into links (code, url) values (${CODE}, 'https://example.com/bench')`.finally(() => sql.end());
          const server = await startChildServer({
            what: "npm start (the supervisor) on the bench's project",
            file: process.execPath,
            args: [supervisorEntry],
            env: {
              WORKYARD_BENCH_PROJECT: root,
              DATABASE_URL: scratch.url,
              REDIS_URL: "",
              AUTH_JWT_SECRET: randomBytes(32).toString("base64url"),
            },
            cwd: root,
            onLine: (l) => onLine("npm start", l),
            timeoutMs: 180_000,
          });
          teardown.add(() => server.stop());
          const base = `http://127.0.0.1:${server.port}`;
          await checkAnswers(request(base));
          return { ...request(base), stop: () => teardown.run() };
        } catch (err) {
          await teardown.run().catch((cleanupErr: unknown) => log(`  cleaning up after a failed start: ${message(cleanupErr)}`));
          throw err;
        }
      },
    };
  }

  const persisted = JSON.parse(await readFile(join(paths.functions, "graphql", "persisted-operations.json"), "utf8")) as Record<
    string,
    string
  >;
  const documentId = createHash("sha256").update(QUERY).digest("hex");
  if (persisted[documentId] !== QUERY)
    throw new Error(`functions/graphql/persisted-operations.json has no entry for the bench's query: ${QUERY}`);
  const post = (body: unknown) => ({
    method: "POST" as const,
    headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
    body: JSON.stringify(body),
  });

  return {
    scenarios: [
      scenario(API_REST, (base) => ({ url: `${base}/links/${CODE}/stats` })),
      scenario(API_GRAPHQL, (base) => ({ url: `${base}/graphql`, request: post({ query: QUERY, variables: { code: CODE } }) })),
      scenario(API_PERSISTED, (base) => ({ url: `${base}/graphql`, request: post({ documentId, variables: { code: CODE } }) })),
      // The same query as a GET (queries may be sent so): no request body to carry from the gateway to the function.
      scenario(API_GRAPHQL_GET, (base) => ({
        url: `${base}/graphql?${new URLSearchParams({ query: QUERY, variables: JSON.stringify({ code: CODE }) }).toString()}`,
        request: { method: "GET", headers: { accept: "application/graphql-response+json" } },
      })),
      scenario(API_PERSISTED_GET, (base) => ({
        url: `${base}/graphql?${new URLSearchParams({ documentId: `sha256:${documentId}`, variables: JSON.stringify({ code: CODE }) }).toString()}`,
        request: { method: "GET", headers: { accept: "application/graphql-response+json" } },
      })),
    ],
    comparisons: [
      { name: "GraphQL / REST, a link by code", a: API_GRAPHQL, b: API_REST, target: 0.8 },
      { name: "GraphQL persisted operation / REST, a link by code", a: API_PERSISTED, b: API_REST },
      { name: "GraphQL over GET / REST, a link by code", a: API_GRAPHQL_GET, b: API_REST },
      { name: "GraphQL persisted operation as a GET / REST, a link by code", a: API_PERSISTED_GET, b: API_REST },
    ],
  };
}
