/** What `npm run setup:server` is told (command-line flags), checked once, with every default in one place. */
import { availableParallelism } from "node:os";
import { z } from "zod";
import { UserError } from "../../common/user-error.ts";
import { DEFAULT_BACKUP_KEEP, DEFAULT_BACKUP_MAX_AGE_DAYS } from "../../data/backup.ts";

const port = z.coerce.number().int().min(1).max(65535);
const size = z.string().regex(/^\d+(\.\d+)?[KMGT]?$/, { error: "a size such as 512M or 2G" });

export const setupOptionsSchema = z.object({
  /** The project checkout the units run (the repository, with node_modules installed). */
  root: z.string().startsWith("/", { error: "--root must be an absolute path" }),
  /** The public host name Caddy gets a certificate for (or any Caddy site address, e.g. http://:80). */
  domain: z.string().min(1).default("example.com"),
  /** The address Let's Encrypt writes to about certificates. */
  email: z.email({ error: "--email must be an e-mail address" }).optional(),
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: "--user must be a plain system user name" })
    .default("workyard"),
  port: port.default(8787),
  internalPort: port.default(8788),
  /** Not 6432: Debian's own pgbouncer.service listens there. */
  pgbouncerPort: port.default(6433),
  redisProxyPort: port.default(8079),
  memoryMax: size.default("2G"),
  /** Default: 90% of every core. */
  cpuQuota: z
    .string()
    .regex(/^\d+%$/, { error: "a percentage such as 150% (100% is one core)" })
    .default(`${availableParallelism() * 90}%`),
  tasksMax: z.coerce.number().int().min(16).default(1024),
  backupDir: z.string().startsWith("/").default("/var/backups/workyard"),
  backupKeep: z.coerce.number().int().min(1).default(DEFAULT_BACKUP_KEEP),
  backupMaxAgeDays: z.coerce.number().min(0).default(DEFAULT_BACKUP_MAX_AGE_DAYS),
  /** A systemd calendar expression. */
  backupAt: z.string().min(1).default("*-*-* 03:15:00 UTC"),
  /** The Node binary the units run (absolute). */
  node: z.string().startsWith("/"),
  pgbouncerBin: z.string().startsWith("/").default("/usr/sbin/pgbouncer"),
  /** Where the files go on the server: /etc/workyard, /etc/systemd/system, /etc/caddy. */
  etcDir: z.string().startsWith("/").default("/etc/workyard"),
  unitDir: z.string().startsWith("/").default("/etc/systemd/system"),
  caddyfile: z.string().startsWith("/").default("/etc/caddy/Caddyfile"),
  /** Written into a new env file only; an existing one is never touched. */
  databaseUrl: z.string().optional(),
  redisUrl: z.string().default("redis://127.0.0.1:6379"),
});
export type SetupOptions = z.infer<typeof setupOptionsSchema>;

/** internalPort → internal-port: the flag's name. */
export const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Parses the options; throws one message naming every bad flag. */
export function parseSetupOptions(input: Record<string, unknown>): SetupOptions {
  const parsed = setupOptionsSchema.safeParse(input);
  if (!parsed.success) {
    throw new UserError(
      `Bad setup:server options: ${parsed.error.issues.map((i) => `--${kebab(String(i.path[0] ?? ""))}: ${i.message}`).join("; ")}`,
    );
  }
  return parsed.data;
}
