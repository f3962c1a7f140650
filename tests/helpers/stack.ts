/**
 * The whole stack for a test file, as `npm start` runs it: a project copy, the run's PostgreSQL (through
 * PgBouncer) or the embedded one, the run's Redis through the proxy, real workerd, and a JWT secret. `call`
 * fetches a path and parses the JSON error shape; `sql` reads the database directly to check what was written.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import type { Sql } from "postgres";
import { expect, inject } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { startSupervisor } from "../../lib/node/runtime/supervisor.ts";
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";
import { testJwtSecret } from "./auth.ts";
import { createTestProject } from "./test-project.ts";
import type { TestProject } from "./test-project.ts";

export interface Stack {
  sup: Supervisor;
  project: TestProject;
  jwtSecret: string;
  /** A direct connection to the database the functions use. */
  sql: Sql;
  databaseUrl: string;
  logs: string[];
  call(path: string, init?: RequestInit): Promise<Answer>;
  stop(): Promise<void>;
}

export interface Answer {
  res: Response;
  status: number;
  text: string;
  body: Record<string, never>;
  requestId: string | null;
}

export interface StackOptions {
  fixtures?: string[];
  /** Replaces the shared CORS_ORIGINS var. */
  corsOrigins?: string;
  env?: Record<string, string>;
  /** Replaces vars in functions' own wrangler.toml: { webhooks: { WEBHOOK_URL: "http://..." } }. */
  vars?: Record<string, Record<string, string | number>>;
  /** Files written into the project copy before it starts: { "functions/x/wrangler.toml": "..." }. */
  files?: Record<string, string>;
  /** Also the API-surface functions (docs, graphql): see test-project.ts. */
  apiSurface?: boolean;
  /** Also the front end (functions/app): see test-project.ts. */
  frontEnd?: boolean;
}

export async function startStack({
  fixtures = [],
  corsOrigins,
  env = {},
  vars = {},
  files = {},
  apiSurface = false,
  frontEnd = false,
}: StackOptions = {}): Promise<Stack> {
  const databaseUrl = inject("databaseUrl");
  const redisUrl = inject("redisUrl");
  const project = await createTestProject({ fixtures, apiSurface, frontEnd });
  if (corsOrigins !== undefined) {
    const shared = await readFile(project.paths.sharedConfig, "utf8");
    await writeFile(project.paths.sharedConfig, shared.replace(/^CORS_ORIGINS = .*$/m, `CORS_ORIGINS = ${JSON.stringify(corsOrigins)}`));
  }
  for (const [fn, values] of Object.entries(vars)) {
    const file = join(project.paths.functions, fn, "wrangler.toml");
    let toml = await readFile(file, "utf8");
    for (const [name, value] of Object.entries(values)) {
      const line = new RegExp(`^${name} = .*$`, "m");
      if (!line.test(toml)) throw new Error(`functions/${fn}/wrangler.toml has no var ${name} to replace`);
      toml = toml.replace(line, `${name} = ${JSON.stringify(value)}`);
    }
    await writeFile(file, toml);
  }
  for (const [file, text] of Object.entries(files)) await writeFile(join(project.paths.root, file), text);
  if (databaseUrl) await migrateUp(databaseUrl, project.paths.migrations);
  const jwtSecret = testJwtSecret();
  const logs: string[] = [];
  const sup = await startSupervisor({
    paths: project.paths,
    host: "127.0.0.1",
    port: 0,
    env: {
      AUTH_JWT_SECRET: jwtSecret,
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      ...env,
    },
    log: (line) => logs.push(line),
  });
  const directUrl = databaseUrl ?? sup.backends.database.url;
  const sql = postgres(directUrl, { max: 1, onnotice: () => {} });
  return {
    sup,
    project,
    jwtSecret,
    sql,
    databaseUrl: directUrl,
    logs,
    call: (path, init) => fetchAnswer(`${sup.url}${path}`, init),
    async stop() {
      await sql.end();
      await sup.stop();
      await project.dispose();
    },
  };
}

/** Fetches without following redirects; the body parsed as JSON when it is JSON, else the text. */
export async function fetchAnswer(url: string, init?: RequestInit): Promise<Answer> {
  const res = await fetch(url, { redirect: "manual", ...init });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { res, status: res.status, text, body: body as Record<string, never>, requestId: res.headers.get("x-request-id") };
}

/** The one error shape: status, JSON, the stable code, and the request id of the response. */
export function expectError(r: Answer, status: number, code: string): void {
  expect({ status: r.status, body: r.body }).toMatchObject({ status, body: { error: { code, requestId: r.requestId } } });
  expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(r.requestId).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
}
