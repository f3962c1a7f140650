/**
 * The supervisor behind `npm start` (and the integration tests): builds when sources changed, brings up
 * the database (embedded PGlite unless DATABASE_URL is given) and its migrations, starts workerd on the
 * public socket, waits until it answers, restarts it if it dies, and stops everything on request.
 */
import { build } from "./build.ts";
import type { BuildResult } from "./build.ts";
import { startEmbeddedPostgres } from "./embedded-postgres.ts";
import type { EmbeddedPostgres } from "./embedded-postgres.ts";
import { listenSocket } from "./listen-socket.ts";
import { migrateUp, pendingMigrations } from "./migrations.ts";
import type { ProjectPaths } from "./paths.ts";
import { startWorkerd, waitUntilAnswering } from "./workerd-process.ts";
import type { WorkerdProcess } from "./workerd-process.ts";

export interface SupervisorOptions {
  paths: ProjectPaths;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** The process environment: DATABASE_URL and the secrets functions declare are read from it. */
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Where the embedded database keeps its data; default .workyard/pglite. */
  embeddedDbDir?: string;
  /** Called when workerd keeps dying and the supervisor gives up. */
  onFatal?: (err: Error) => void;
}

export interface Backends {
  database: { kind: "embedded-pglite"; url: string; dataDir: string } | { kind: "postgres"; url: string };
}

export interface Supervisor {
  url: string;
  release: BuildResult;
  backends: Backends;
  /** Secrets functions declare that the environment does not set, by function. */
  missingSecrets: Map<string, string[]>;
  stop(): Promise<void>;
}

export class StartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StartError";
  }
}

/** postgres://user:secret@host/db → postgres://user:***@host/db, for printing. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(an unparsable URL)";
  }
}

async function startDatabase(opts: SupervisorOptions): Promise<{ backends: Backends; embedded?: EmbeddedPostgres }> {
  const given = opts.env.DATABASE_URL;
  if (given) {
    let pending: string[];
    try {
      pending = await pendingMigrations(given, opts.paths.migrations);
    } catch (err) {
      throw new StartError(`Cannot reach the database at ${redactUrl(given)}: ${(err as Error).message}`, { cause: err });
    }
    if (pending.length > 0) {
      throw new StartError(
        `The database at ${redactUrl(given)} has ${pending.length} pending migration(s): ${pending.join(", ")}.\n` +
          "Apply them with `npm run migrate -- up`, then start again.",
      );
    }
    return { backends: { database: { kind: "postgres", url: given } } };
  }
  const embedded = await startEmbeddedPostgres(opts.embeddedDbDir ?? opts.paths.embeddedDb);
  try {
    const applied = await migrateUp(embedded.url, opts.paths.migrations);
    if (applied.length > 0) opts.log(`applied migrations to the embedded database: ${applied.join(", ")}`);
  } catch (err) {
    await embedded.stop();
    throw err;
  }
  return { backends: { database: { kind: "embedded-pglite", url: embedded.url, dataDir: embedded.dataDir } }, embedded };
}

/** Builds if needed, starts the backends and workerd, and resolves once the functions answer. */
export async function startSupervisor(opts: SupervisorOptions): Promise<Supervisor> {
  const release = await build(opts.paths);
  opts.log(`${release.reused ? "sources unchanged, using" : "built"} release ${release.manifest.id} (${Math.round(release.ms)} ms)`);
  const { backends, embedded } = await startDatabase(opts);

  // workerd sees only what functions declare as secrets: nothing else from this environment leaks in.
  const env: Record<string, string> = {};
  const missingSecrets = new Map<string, string[]>();
  for (const fn of release.manifest.functions) {
    for (const name of fn.secrets) {
      const value = name === "DATABASE_URL" ? backends.database.url : opts.env[name];
      if (value === undefined) missingSecrets.set(fn.name, [...(missingSecrets.get(fn.name) ?? []), name]);
      else env[name] = value;
    }
  }

  let socket = await listenSocket(opts.host, opts.port);
  const port = socket.port;
  const url = `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`;
  const onLine = (line: string) => opts.log(`[workerd] ${line}`);
  let proc: WorkerdProcess = startWorkerd({ releaseDir: release.releaseDir, socket, env, onLine });
  let stopping = false;

  try {
    await waitUntilAnswering(url, proc);
  } catch (err) {
    await proc.stop(1000);
    await embedded?.stop();
    throw new StartError(`workerd did not start: ${(err as Error).message}`, { cause: err });
  }

  // Restart workerd if it dies, backing off; give up after 5 failed starts in a row.
  const watch = (current: WorkerdProcess, failures: number): void => {
    void current.exited.then(async (code) => {
      if (stopping) return;
      if (failures >= 5) {
        opts.onFatal?.(new StartError(`workerd keeps exiting (last code ${code}); giving up`));
        return;
      }
      const delay = Math.min(30_000, 500 * 2 ** failures);
      opts.log(`workerd exited unexpectedly (code ${code}); restarting in ${delay} ms`);
      await new Promise((r) => setTimeout(r, delay));
      if (stopping) return;
      try {
        socket = await listenSocket(opts.host, port);
        proc = startWorkerd({ releaseDir: release.releaseDir, socket, env, onLine });
        await waitUntilAnswering(url, proc);
        opts.log("workerd is answering again");
        watch(proc, 0);
      } catch (err) {
        opts.log(`restart failed: ${(err as Error).message}`);
        watch(proc, failures + 1);
      }
    });
  };
  watch(proc, 0);

  return {
    url,
    release,
    backends,
    missingSecrets,
    async stop() {
      stopping = true;
      await proc.stop();
      await embedded?.stop();
    },
  };
}
