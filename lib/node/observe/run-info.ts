/**
 * Where the running supervisor's collector and internal socket are, for the project's own commands
 * (`npm run logs`, `npm run dashboard`): .workyard/run/observe.json, readable by the project's owner only.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import type { ProjectPaths } from "../common/paths.ts";
import { UserError } from "../common/user-error.ts";

const infoSchema = z.object({
  collectorUrl: z.string(),
  collectorToken: z.string(),
  internalUrl: z.string(),
  internalToken: z.string(),
  pid: z.number().int(),
});
export type ObserveInfo = z.infer<typeof infoSchema>;

export const observeInfoFile = (paths: ProjectPaths) => join(paths.work, "run", "observe.json");

export async function writeObserveInfo(paths: ProjectPaths, info: ObserveInfo): Promise<void> {
  const file = observeInfoFile(paths);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(info), { mode: 0o600 });
}

export const removeObserveInfo = (paths: ProjectPaths) => rm(observeInfoFile(paths), { force: true });

/** The running supervisor's info, or an error that says to start it. */
export async function readObserveInfo(paths: ProjectPaths): Promise<ObserveInfo> {
  const file = observeInfoFile(paths);
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (!text) throw new UserError("workyard is not running here: start it with npm start, then try again");
  const info = infoSchema.parse(JSON.parse(text));
  try {
    process.kill(info.pid, 0);
  } catch {
    throw new UserError(`workyard is not running (the process ${info.pid} that wrote ${file} is gone): start it with npm start`);
  }
  return info;
}
