/**
 * /etc/workyard/env: the one place for settings and secrets in production (mode 0600, owner root; systemd
 * reads it before dropping to the service user). Written once with fresh random tokens; never overwritten.
 */
import { randomBytes } from "node:crypto";
import type { SetupOptions } from "./options.ts";

const token = () => randomBytes(24).toString("base64url");

/** The login functions use for PgBouncer: DATABASE_URL's user and database, PgBouncer's port, its own password. */
function pgbouncerUrl(databaseUrl: string, port: number, password: string): string {
  const u = new URL(databaseUrl);
  u.password = password;
  u.hostname = "127.0.0.1";
  u.port = String(port);
  u.search = "";
  return u.toString();
}

export function envFile(o: SetupOptions, secret: () => string = token): string {
  const databaseUrl = o.databaseUrl ?? "postgres://workyard:CHANGE_ME@127.0.0.1:5432/workyard";
  return `# workyard's production settings and secrets, read by every workyard unit (EnvironmentFile=).
# Mode 0600, owner root. After a change: systemctl restart workyard-pgbouncer workyard-redis-proxy workyard

HOST=127.0.0.1
PORT=${o.port}
INTERNAL_PORT=${o.internalPort}
WORKYARD_INTERNAL_TOKEN=${secret()}
# Signs and checks the access tokens of the auth function; every node must have the same one.
AUTH_JWT_SECRET=${secret()}${secret()}

# PostgreSQL, directly: migrations, the cron scheduler's records, backups. The role needs CREATEDB for backup:verify.
DATABASE_URL=${databaseUrl}
# PgBouncer (workyard-pgbouncer): what functions connect to. Same user and database as DATABASE_URL, its own password.
PGBOUNCER_URL=${pgbouncerUrl(databaseUrl, o.pgbouncerPort, secret())}

REDIS_URL=${o.redisUrl}
# The Redis proxy (workyard-redis-proxy), and the token functions present to it.
REDIS_PROXY_URL=http://127.0.0.1:${o.redisProxyPort}
REDIS_PROXY_TOKEN=${secret()}

BACKUP_DIR=${o.backupDir}
BACKUP_KEEP=${o.backupKeep}
BACKUP_MAX_AGE_DAYS=${o.backupMaxAgeDays}

# WORKYARD_SCHEDULER=off   on all nodes but some, if crons should not run everywhere (they run once either way)
# Secrets your functions declare ([secrets] required = [...] in their wrangler.toml), e.g.:
# API_KEY=...
`;
}
