/** Finding an installed program: the PATH first, then the folders Debian's packages install into. */
import { existsSync } from "node:fs";
import { join } from "node:path";

const SYSTEM_DIRS = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"];

/** The path of `name` on the PATH or in the system folders, or undefined when it is not installed. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? "").split(":").filter(Boolean), ...SYSTEM_DIRS];
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p));
}
