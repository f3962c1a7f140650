/**
 * The part of `node:crypto` that lib/sdk uses. workerd implements it natively under the `nodejs_compat`
 * flag (as do Cloudflare and Deno), but @cloudflare/workers-types does not declare Node's modules, and the
 * workerd-side type check must not pull in all of @types/node (it would bring `process` and friends).
 */
declare module "node:crypto" {
  export interface ScryptOptions {
    N: number;
    r: number;
    p: number;
    maxmem?: number;
  }
  export function scrypt(
    password: string | Uint8Array,
    salt: string | Uint8Array,
    keylen: number,
    options: ScryptOptions,
    callback: (err: Error | null, derivedKey: Uint8Array) => void,
  ): void;
  export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}
