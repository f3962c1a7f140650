/**
 * `.dev.vars`: the git-ignored file of local secrets, in the dotenv format Wrangler reads for `wrangler dev`
 * (KEY=value lines, # comments, quoted values).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseEnv } from "node:util";

export const DEV_VARS_FILE = ".dev.vars";

/** The values in `<root>/.dev.vars`, or none when there is no such file. */
export async function readDevVars(root: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(join(root, DEV_VARS_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(parseEnv(text))) if (value !== undefined) values[name] = value;
  return values;
}
