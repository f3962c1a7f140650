/**
 * Typed, validated access to a function's bindings (vars from wrangler.toml, secrets from the process
 * environment). Validated once per env object; a missing or malformed binding fails every request with one
 * message that names all of them and how to fix it, instead of failing somewhere deep in a handler.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { DEV_MODE_VAR } from "../shared/names.ts";
import { ApiError } from "./errors.ts";

export class EnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EnvError";
  }
}

/** Explains each failing binding in one message. */
export function describeEnvIssues(issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.map((i) => {
    const name = i.path.map(String).join(".") || "(env)";
    return i.code === "invalid_type" && i.input === undefined ? `  - ${name}: missing` : `  - ${name}: ${i.message}`;
  });
  return (
    `This function's bindings are not as it needs them:\n${lines.join("\n")}\n` +
    "Set vars in the function's wrangler.toml ([vars]) or the top-level one, and secrets in the environment " +
    "(.dev.vars or the process environment) under [secrets] required = [...]."
  );
}

/**
 * Why a function has no bindings at all, when the runtime passed none: no env object, or Deno's connection info in
 * its place (`deno serve` calls `fetch(request, info)`). The usual advice (set them in wrangler.toml or the
 * environment) would mislead there: they may well be set.
 */
export function noBindingsReason(env: unknown): string | undefined {
  if (env === undefined || env === null) return "The runtime passed this function no bindings (no env object).";
  if (typeof env === "object" && "remoteAddr" in env && "completed" in env) {
    return (
      "The runtime passed this function no bindings: its second argument is connection info (`deno serve`), not an env. " +
      "Serve it with `npm run deno -- <name>`, which passes the vars and secrets, or with npm start / npm run dev."
    );
  }
  if (typeof env === "object" && "remoteAddr" in env) {
    return "The runtime passed this function connection info where its bindings belong (not an env). Serve it with `npm run deno -- <name>`.";
  }
  return undefined;
}

/** What stands for a missing env object in perEnv's cache. */
const NO_ENV = {};

/**
 * `make(env)` once per env object (so once per worker), on first use: for what is built from the bindings and then
 * shared by the worker's requests (a client, settings).
 */
export function perEnv<T>(make: (env: unknown) => T): (env: unknown) => T {
  const made = new WeakMap<object, T>();
  return (env) => {
    const key = (env ?? NO_ENV) as object;
    if (made.has(key)) return made.get(key) as T;
    const value = make(env);
    made.set(key, value);
    return value;
  };
}

/**
 * `const env = defineEnv(z.object({ GREETING: z.string() }))` then `env(c).GREETING` in a handler.
 * The result is cached per env object, so validation runs once per worker, not once per request.
 */
export function defineEnv<S extends z.ZodObject>(schema: S): (c: Context | { env: unknown }) => z.infer<S> {
  const cache = new WeakMap<object, z.infer<S>>();
  return (c) => {
    const raw = (c.env ?? {}) as object;
    const hit = cache.get(raw);
    if (hit) return hit;
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const message = noBindingsReason(c.env) ?? describeEnvIssues(parsed.error.issues);
      console.error(message);
      // The operator reads the log; the client only learns that the function is misconfigured.
      throw new ApiError(500, "This function is misconfigured; see the server log", {
        code: "misconfigured",
        cause: new EnvError(message),
      });
    }
    cache.set(raw, parsed.data);
    return parsed.data;
  };
}

/** A boolean setting: true for `true` (a TOML boolean var), "true" or "1" (from the environment or .dev.vars). */
export function flag(env: unknown, name: string): boolean {
  const value = (env as Record<string, unknown> | undefined)?.[name];
  return value === "1" || value === "true" || value === true;
}

/** True under `npm run dev` (or where WORKYARD_DEV=1 is set, e.g. in .dev.vars for `wrangler dev`): developer aids on. */
export const isDevelopment = (env: unknown): boolean => flag(env, DEV_MODE_VAR);
