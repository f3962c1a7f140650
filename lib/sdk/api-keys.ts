/**
 * API keys for machine clients: `wyk_<id>_<secret>`. The id (12 characters) is public and finds the key's row;
 * the secret (32 random bytes) is shown once when the key is made and only its SHA-256 is stored. A fast hash
 * is right here (unlike passwords): the secret is random and long, so there is nothing to guess. Pure code, used
 * inside workerd (checking a key) and in Node (`npm run apikey`, making one).
 */
export const API_KEY_PREFIX = "wyk_";
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const shape = /^wyk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** The key's id, or undefined when the text is not shaped like a key. */
export function apiKeyId(key: string): string | undefined {
  return shape.exec(key)?.[1];
}

/** Hex SHA-256 of a text (how keys and refresh tokens are stored). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hex SHA-256 of the whole key, as stored. */
export const hashApiKey = sha256Hex;

/** `bytes` random bytes as unpadded base64url. */
export function randomToken(bytes = 32): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** A new key, its id and the hash to store. */
export async function newApiKey(): Promise<{ id: string; key: string; hash: string }> {
  const idBytes = crypto.getRandomValues(new Uint8Array(12));
  const id = Array.from(idBytes, (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join("");
  const secret = randomToken(32);
  const key = `${API_KEY_PREFIX}${id}_${secret}`;
  return { id, key, hash: await hashApiKey(key) };
}
