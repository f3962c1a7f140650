/**
 * The in-memory backend's keys in a file, so that `npm start` without REDIS_URL keeps them across a restart as
 * the embedded PostgreSQL keeps its data (the `links` example's click counts, rate-limit windows, cache entries).
 *
 * The file is JSON: `{ format, version, savedAt, keys: [{ key, type, value, expiresAt? }] }`, one entry per key
 * with its Redis type (string, hash, list, set, zset). Byte strings are JSON strings when they are UTF-8, else
 * `{ base64 }`; scores are strings (JSON has no infinities). `expiresAt` is an absolute time (Unix ms), as in
 * Redis's own RDB files: the clock keeps running while nothing serves, so at load a key whose time ran out is
 * dropped and the others get what remains of their TTL.
 *
 * A snapshot is written whole or not at all (temp file, fsync, rename), readable by the owner only.
 */
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";

const FORMAT = "workyard-redis-memory";
const VERSION = 1;

const bytesSchema = z.union([z.string(), z.object({ base64: z.base64() }).strict()]);
/** A byte string: text when it is UTF-8, else its base64. */
export type Bytes = z.infer<typeof bytesSchema>;

const expiresAt = z.number().int().positive().optional();
const entrySchema = z.discriminatedUnion("type", [
  z.object({ key: z.string(), type: z.literal("string"), value: bytesSchema, expiresAt }),
  z.object({ key: z.string(), type: z.literal("hash"), value: z.array(z.tuple([z.string(), bytesSchema])), expiresAt }),
  z.object({ key: z.string(), type: z.literal("list"), value: z.array(bytesSchema), expiresAt }),
  z.object({ key: z.string(), type: z.literal("set"), value: z.array(bytesSchema), expiresAt }),
  z.object({ key: z.string(), type: z.literal("zset"), value: z.array(z.tuple([bytesSchema, z.string()])), expiresAt }),
]);
/** One key: its type, its value (hash: [field, value] pairs; zset: [member, score] pairs), its deadline if any. */
export type SnapshotEntry = z.infer<typeof entrySchema>;

const snapshotSchema = z.object({
  format: z.literal(FORMAT),
  version: z.literal(VERSION),
  savedAt: z.string(),
  keys: z.array(entrySchema),
});

/** Bytes as the snapshot keeps them. */
export function toBytes(value: string | Buffer | number): Bytes {
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return value;
  const text = value.toString("utf8");
  return Buffer.from(text).equals(value) ? text : { base64: value.toString("base64") };
}

/** Bytes as the in-memory backend takes them: text as a string, anything else as a Buffer. */
export function fromBytes(value: Bytes): string | Buffer {
  return typeof value === "string" ? value : Buffer.from(value.base64, "base64");
}

/** The snapshot file's text. */
export function encodeSnapshot(keys: readonly SnapshotEntry[], savedAt = new Date()): string {
  return JSON.stringify({ format: FORMAT, version: VERSION, savedAt: savedAt.toISOString(), keys });
}

/** The keys a snapshot holds that are still alive at `now`, and how many it held that are not. Throws when it is not a snapshot. */
export function decodeSnapshot(text: string, now = Date.now()): { keys: SnapshotEntry[]; expired: number } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message})`, { cause: err });
  }
  const parsed = snapshotSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `not a ${FORMAT} v${VERSION} snapshot (${issue ? `${issue.path.join(".") || "top level"}: ${issue.message}` : "invalid"})`,
    );
  }
  const keys = parsed.data.keys.filter((e) => e.expiresAt === undefined || e.expiresAt > now);
  return { keys, expired: parsed.data.keys.length - keys.length };
}

/** Reads a snapshot file's text; undefined when there is none yet. */
export async function readSnapshotText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Replaces the snapshot file at once: the old one stays whole until the new one is complete on disk. */
export async function writeSnapshotText(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  // A temp file left by a crash mid-write may exist: start afresh, created with the owner-only mode.
  await rm(tmp, { force: true });
  const handle = await open(tmp, "wx", 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}
