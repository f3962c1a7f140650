/**
 * The request side of the Upstash REST protocol (shared/notes/upstash-rest-protocol.md) that the Redis proxy
 * (lib/node/redis/proxy/) and the Redis object (lib/workers/redis/) both take: a command is a non-empty JSON array,
 * a pipeline or transaction a non-empty array of them; and the HTTP outcome each refusal is answered with.
 */

/** An HTTP outcome: the status and the message the client gets as `{"error": message}`. */
export class ProxyHttpError extends Error {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, message: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message, options);
    this.name = "ProxyHttpError";
    this.status = status;
    this.headers = options?.headers ?? {};
  }
}

/** The most commands one pipeline or transaction may hold (the client's auto-pipeline batch is 1000 at most). */
export const DEFAULT_MAX_BATCH = 1000;

/** The largest request body the proxy reads, and what the Redis object takes in one call. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** What a request over the body limit is answered (413). */
export const bodyTooLargeMessage = (limit: number) =>
  `ERR the request body is larger than the limit of ${limit} bytes: send smaller values or batches`;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}

/**
 * One command from JSON: a non-empty array whose first element is the name; arguments may be strings,
 * numbers or booleans (the client stringifies them, but other clients may not) and are sent as strings.
 */
export function parseCommand(value: unknown, where = "the body"): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ProxyHttpError(400, `ERR ${where} must be a non-empty JSON array like ["SET", "key", "value"], got ${describe(value)}`);
  }
  const args: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v === "string") args.push(v);
    else if ((typeof v === "number" && Number.isFinite(v)) || typeof v === "boolean") args.push(String(v));
    else {
      throw new ProxyHttpError(400, `ERR element ${i} of ${where} must be a string, a finite number or a boolean, got ${describe(v)}`);
    }
  }
  if (args[0] === "") throw new ProxyHttpError(400, `ERR ${where} has an empty command name`);
  return args;
}

/** A pipeline or transaction body: a non-empty array of commands, at most maxBatch of them. */
export function parseBatch(value: unknown, maxBatch: number): string[][] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ProxyHttpError(
      400,
      `ERR the body must be a non-empty JSON array of commands like [["SET", "k", "v"], ["GET", "k"]], got ${value === undefined ? "nothing" : describe(value)}`,
    );
  }
  if (value.length > maxBatch) {
    throw new ProxyHttpError(413, `ERR the batch has ${value.length} commands, more than the limit of ${maxBatch}: split it`);
  }
  return value.map((c: unknown, i) => parseCommand(c, `command ${i}`));
}
