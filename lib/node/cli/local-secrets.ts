/**
 * Signing keys that `npm start` and `npm run dev` make for themselves when the environment does not set them,
 * so a fresh clone works with no setup: a random value kept in .workyard/secrets/<NAME> (mode 0600, git-ignored,
 * the same across restarts so tokens stay valid). Only keys the project both issues and checks qualify; a
 * secret that comes from elsewhere (a database password, an API key) is never invented. Production sets its own
 * (`npm run setup:server` writes one into /etc/workyard/env), and several nodes must share one.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProjectPaths } from "../common/paths.ts";

/** The secrets that may be generated locally. */
export const LOCALLY_GENERATED_SECRETS = ["AUTH_JWT_SECRET"] as const;

/** Sets each missing locally generated secret in `env` from .workyard/secrets/, making it on first use. */
export async function ensureLocalSecrets(paths: ProjectPaths, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const dir = join(paths.work, "secrets");
  for (const name of LOCALLY_GENERATED_SECRETS) {
    if (env[name]) continue;
    const file = join(dir, name);
    if (!existsSync(file)) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(file, `${randomBytes(48).toString("base64url")}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
    }
    env[name] = (await readFile(file, "utf8")).trim();
    log(
      `${name} is not set: using a generated one kept in ${file}; set your own in .env or the environment for production (all nodes must share it)`,
    );
  }
}
