/**
 * What an operator does to accounts and API keys from the command line (`npm run apikey`, `npm run user`), as
 * plain functions on a postgres.js client so tests call them directly. API keys are shown once, when made; only
 * their SHA-256 is stored (lib/sdk/api-keys.ts).
 */
import type { Sql } from "postgres";
import { newApiKey } from "../../sdk/api-keys.ts";
import { UserError } from "../common/user-error.ts";

export const ROLES = ["user", "admin"] as const;
export type Role = (typeof ROLES)[number];

export interface ApiKeyInfo {
  id: string;
  function: string;
  name: string;
  role: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** Makes an API key for `fn`; returns the key itself (show it once) and its id. */
export async function createApiKey(sql: Sql, fn: string, name: string, role: Role = "user"): Promise<{ id: string; key: string }> {
  if (!/^[a-z][a-z0-9-]*$/.test(fn)) throw new UserError(`"${fn}" is not a function name (lower-case letters, digits and '-')`);
  if (name.length === 0 || name.length > 100)
    throw new UserError("Give the key a name of 1 to 100 characters (--name), saying who uses it");
  const { id, key, hash } = await newApiKey();
  await sql`insert into auth_api_keys (id, key_hash, function, name, role) values (${id}, ${hash}, ${fn}, ${name}, ${role})`;
  return { id, key };
}

/** Every API key, newest first (without secrets: there are none to show). */
export async function listApiKeys(sql: Sql): Promise<ApiKeyInfo[]> {
  const rows = await sql<{ id: string; function: string; name: string; role: string; created_at: Date; revoked_at: Date | null }[]>`
    select id, function, name, role, created_at, revoked_at from auth_api_keys order by created_at desc`;
  return rows.map((r) => ({
    id: r.id,
    function: r.function,
    name: r.name,
    role: r.role,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  }));
}

/** Revokes a key by id: it stops working at once. */
export async function revokeApiKey(sql: Sql, id: string): Promise<void> {
  const done = await sql`update auth_api_keys set revoked_at = now() where id = ${id} and revoked_at is null`;
  if (done.count === 0) throw new UserError(`No active API key with id "${id}" (see npm run apikey -- list)`);
}

/** Gives an account a role; it takes effect at the account's next token refresh or login. */
export async function setRole(sql: Sql, email: string, role: Role): Promise<void> {
  const done = await sql`update auth_users set role = ${role} where email = ${email.trim().toLowerCase()}`;
  if (done.count === 0) throw new UserError(`No account with the email "${email}"`);
}
