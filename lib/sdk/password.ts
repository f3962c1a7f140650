/**
 * Password hashing with scrypt, from `node:crypto`: workerd runs it natively (BoringSSL) under nodejs_compat,
 * as Cloudflare and Deno do, so no JavaScript KDF is needed. Measured inside workerd on the 2-core build machine:
 * N=2^14, r=8, p=5 (OWASP's 16 MiB setting) takes ~130 ms per hash; N=2^17, p=1 (128 MiB) ~300 ms; N=2^14, p=1
 * ~35 ms. The default is OWASP's N=2^14, r=8, p=5. Note that scrypt blocks the workerd thread while it runs, so a
 * process can do ~7 logins a second per core: that is the point of a slow KDF, and why login is rate limited.
 *
 * Hashes are stored as PHC-style strings that carry their parameters, `$scrypt$ln=14,r=8,p=5$<salt>$<hash>`
 * (base64, no padding), so the parameters can be raised later: `needsRehash` says when a stored hash is weaker
 * than the current setting, and the auth function rehashes on the next successful login.
 */
import { scrypt, timingSafeEqual } from "node:crypto";

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  ln: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { ln: 14, r: 8, p: 5 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** Longest password accepted, in UTF-8 bytes: bounds the work a request can ask for. */
export const MAX_PASSWORD_BYTES = 1024;

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/=+$/, "");
const unb64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));

function derive(password: string, salt: Uint8Array, { ln, r, p }: ScryptParams, keyBytes = KEY_BYTES): Promise<Uint8Array> {
  const N = 2 ** ln;
  // scrypt needs 128 * N * r bytes (plus some); allow that much and no more.
  const maxmem = 128 * N * r + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFKC"), salt, keyBytes, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A PHC-style scrypt hash of `password` with a fresh random salt. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const key = await derive(password, salt, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

const phc = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{16,})$/;

function parse(stored: string): { params: ScryptParams; salt: Uint8Array; key: Uint8Array } | undefined {
  const m = phc.exec(stored);
  if (!m) return undefined;
  const [, ln, r, p, salt, key] = m;
  return { params: { ln: Number(ln), r: Number(r), p: Number(p) }, salt: unb64(salt ?? ""), key: unb64(key ?? "") };
}

/** True when `password` matches the stored hash; the comparison takes the same time wherever they differ. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) throw new Error("The stored password hash is not a $scrypt$ PHC string");
  const key = await derive(password, parsed.salt, parsed.params, parsed.key.length);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/** True when the stored hash was made with weaker parameters than `params` (rehash it after a good login). */
export function needsRehash(stored: string, params: ScryptParams = DEFAULT_SCRYPT): boolean {
  const parsed = parse(stored);
  if (!parsed) return true;
  const cost = (x: ScryptParams) => 2 ** x.ln * x.r * x.p;
  return cost(parsed.params) < cost(params) || parsed.params.ln < params.ln;
}

/**
 * A hash of a password nobody has, made once per isolate: logging in as an unknown account verifies against it,
 * so the answer takes as long as for a known account with a wrong password (no account discovery by timing).
 */
let dummy: string | undefined;
export async function dummyHash(params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  dummy ??= await hashPassword(crypto.randomUUID(), params);
  return dummy;
}
