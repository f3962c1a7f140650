/** An empty database for one test: a new database on the run's PostgreSQL, or a new embedded PGlite. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { inject } from "vitest";
import { startEmbeddedPostgres } from "../../lib/node/data/embedded-postgres.ts";

export interface FreshDatabase {
  url: string;
  kind: "postgres" | "embedded-pglite";
  dispose(): Promise<void>;
}

export async function freshDatabase(): Promise<FreshDatabase> {
  const base = inject("databaseUrl");
  if (!base) {
    const dir = await mkdtemp(join(tmpdir(), "workyard-pglite-"));
    const pg = await startEmbeddedPostgres(dir);
    return { url: pg.url, kind: "embedded-pglite", dispose: async () => (await pg.stop(), await rm(dir, { recursive: true, force: true })) };
  }
  const name = `workyard_fresh_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    kind: "postgres",
    dispose: async () => {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
