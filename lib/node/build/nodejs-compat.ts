/**
 * Whether a worker gets Node.js built-ins (`node:*` imports). `nodejs_compat` is on by default from compatibility
 * date 2026-08-04 (workerd's compatibility-date.capnp; Wrangler reads it the same way), and naming the flag on or
 * after that date makes workerd print a warning for every worker of every process at start.
 */
export const NODEJS_COMPAT_DEFAULT_DATE = "2026-08-04";

/** True when a worker with this date and these flags has Node.js built-ins, as workerd and Wrangler read them. */
export function hasNodejsCompat(compatibilityDate: string, flags: readonly string[]): boolean {
  if (flags.includes("nodejs_compat") || flags.includes("nodejs_compat_v2")) return true;
  return compatibilityDate >= NODEJS_COMPAT_DEFAULT_DATE && !flags.includes("no_nodejs_compat");
}

/** `flags` with `nodejs_compat` added where the date does not already give it. */
export function withNodejsCompat(compatibilityDate: string, flags: readonly string[]): string[] {
  return hasNodejsCompat(compatibilityDate, flags) ? [...flags] : [...flags, "nodejs_compat"];
}
