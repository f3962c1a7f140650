/**
 * What `npm start` and `npm run dev` share as commands: the project paths and .env, the listening settings
 * from the environment (PORT, HOST, and DEV_PORT for dev), and stopping everything on Ctrl-C / SIGTERM.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ensureLocalSecrets } from "./local-secrets.ts";
import { projectPaths } from "../common/paths.ts";
import type { ProjectPaths } from "../common/paths.ts";

const port = z.coerce.number().int().min(0).max(65535);
const settingsSchema = z.object({ PORT: port.default(8787), HOST: z.string().default("127.0.0.1"), DEV_PORT: port.default(0) });
export type ServeSettings = z.infer<typeof settingsSchema>;

/** The project's paths (WORKYARD_ROOT or this repository), after loading its git-ignored .env if there is one. */
export function projectWithEnv(): ProjectPaths {
  const paths = projectPaths(process.env.WORKYARD_ROOT);
  if (existsSync(join(paths.root, ".env"))) process.loadEnvFile(join(paths.root, ".env"));
  return paths;
}

/**
 * What `npm start` and `npm run dev` begin with: the project (and its .env), the listening settings, a log to
 * stdout, and the signing keys they may make for themselves (local-secrets.ts).
 */
export async function serveCommand(): Promise<{ paths: ProjectPaths; settings: ServeSettings; log: (line: string) => void }> {
  const paths = projectWithEnv();
  const settings = serveSettings();
  const log = (line: string) => console.log(line);
  await ensureLocalSecrets(paths, process.env, log);
  return { paths, settings, log };
}

/** PORT, HOST and DEV_PORT from the environment; exits with a message naming each bad one. */
export function serveSettings(env: NodeJS.ProcessEnv = process.env): ServeSettings {
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) {
    console.error(`Bad settings: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    process.exit(2);
  }
  return parsed.data;
}

/** On SIGINT or SIGTERM, runs `stop` and exits (0 when it succeeded); a second signal exits at once. */
export function stopOnSignals(stop: () => Promise<void>, log: (line: string) => void): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    const started = performance.now();
    log(`\n${signal}: stopping (a second Ctrl-C stops at once)...`);
    stop().then(
      () => {
        log(`stopped in ${((performance.now() - started) / 1000).toFixed(1)} s`);
        process.exit(0);
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
}
