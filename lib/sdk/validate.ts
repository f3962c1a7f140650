/**
 * Request input validation at the edge: `validate("json", schema)` wraps @hono/zod-validator so that every
 * failure answers the standard JSON error with field issues, and a JSON body sent with another content
 * type answers 415 instead of a confusing parse error.
 */
import { zValidator } from "@hono/zod-validator";
import type { MiddlewareHandler, ValidationTargets } from "hono";
import type { z, ZodType } from "zod";
import { ApiError } from "./errors.ts";
import type { FieldIssue } from "./errors.ts";

function toIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): FieldIssue[] {
  return issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

/** The standard 400 for input that is not valid: `invalid_input` with each field's issue. */
export const invalidInput = (message: string, issues: FieldIssue[]) => new ApiError(400, message, { code: "invalid_input", issues });

/** True for application/json and application/<something>+json, with or without parameters. */
export const isJsonContentType = (type: string) => /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(type);

const targetNames: Record<string, string> = {
  json: "JSON body",
  query: "query string",
  param: "path parameter",
  header: "header",
  form: "form body",
  cookie: "cookie",
};

const requireJson: MiddlewareHandler = async function requireJson(c, next) {
  const type = c.req.header("content-type") ?? "";
  if (!isJsonContentType(type)) {
    throw new ApiError(415, `Send the body as JSON with "Content-Type: application/json" (got "${type || "none"}")`);
  }
  await next();
};

// With the u flag, \p{Cs} matches only a surrogate that is not half of a pair.
const loneSurrogate = /\p{Cs}/u;

/**
 * Where the validated value holds a string with an unpaired UTF-16 surrogate (JSON allows "\ud800"). Such text
 * is not Unicode: it would be stored as U+FFFD, so two different inputs would become the same value.
 */
function unpairedSurrogates(value: unknown): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const stack: { value: unknown; path: string }[] = [{ value, path: "" }];
  while (stack.length > 0 && issues.length < 20) {
    const item = stack.pop() as { value: unknown; path: string };
    if (typeof item.value === "string") {
      if (loneSurrogate.test(item.value))
        issues.push({ path: item.path || "(root)", message: "Contains an unpaired surrogate: send valid Unicode text" });
    } else if (item.value !== null && typeof item.value === "object") {
      for (const [key, v] of Object.entries(item.value)) stack.push({ value: v, path: item.path ? `${item.path}.${key}` : key });
    }
  }
  return issues;
}

/**
 * `value` checked by `schema` as validate() checks a request (field issues, unpaired surrogates), for input that does
 * not come through a route's validator (a GraphQL argument): the parsed value, or the standard 400 `message`.
 */
export function checkInput<T extends ZodType>(schema: T, value: unknown, message = "Invalid input: see issues"): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidInput(message, toIssues(parsed.error.issues));
  const unpaired = unpairedSurrogates(parsed.data);
  if (unpaired.length > 0) throw invalidInput(message, unpaired);
  return parsed.data;
}

/** Validates one part of the request with a zod schema; handlers read it with `c.req.valid(target)`. */
export function validate<T extends ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  const invalid = (issues: FieldIssue[]) => invalidInput(`Invalid ${targetNames[target] ?? target}: see issues`, issues);
  const check = zValidator(target, schema, (result) => {
    if (!result.success) throw invalid(toIssues(result.error.issues));
    const unpaired = unpairedSurrogates(result.data);
    if (unpaired.length > 0) throw invalid(unpaired);
  });
  if (target !== "json") return check;
  return async function validateJson(c, next) {
    await requireJson(c, async () => {
      await check(c, next);
    });
  } as typeof check;
}
