/**
 * workerd's queue producer wire format, read (../shared/notes/workers-apis-facts.md; workerd src/workerd/api/queue.c++):
 *   POST /message   the serialized body; X-Msg-Fmt json|text|bytes|v8 (absent: v8), X-Msg-Delay-Secs
 *   POST /batch     {"messages":[{"body":"<base64>","contentType":"json","delaySecs":n}]}, X-Msg-Delay-Secs for all
 * with Cloudflare's limits: 128 KB a message, 100 messages and 256 KB a batch, delays up to 12 hours.
 */
import { z } from "zod";
import { MAX_DELAY_SECONDS } from "../build/wrangler-config.ts";
import { CONTENT_TYPES } from "./store.ts";
import type { ContentType, NewMessage } from "./store.ts";

export const MAX_MESSAGE_BYTES = 128 * 1024;
export const MAX_BATCH_MESSAGES = 100;
export const MAX_BATCH_BYTES = 256 * 1024;

/** A send the service refuses, with the status and the reason workerd shows in "Queue send failed: <reason>". */
export class SendRefused extends Error {
  readonly status: number;
  constructor(status: number, reason: string) {
    super(reason);
    this.status = status;
  }
}

function contentType(value: string | undefined): ContentType {
  const type = (value ?? "v8").toLowerCase();
  if (!(CONTENT_TYPES as readonly string[]).includes(type)) {
    throw new SendRefused(400, `unsupported content type "${value}" (json, text, bytes or v8)`);
  }
  return type as ContentType;
}

/** A delay in seconds from a header or a field; `fallback` when absent. */
export function delaySeconds(value: string | number | undefined | null, fallback: number): number {
  if (value === undefined || value === null || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > MAX_DELAY_SECONDS) {
    throw new SendRefused(400, `delaySeconds must be a whole number of seconds from 0 to ${MAX_DELAY_SECONDS} (12 hours), got ${value}`);
  }
  return n;
}

function checkSize(bytes: number): void {
  if (bytes > MAX_MESSAGE_BYTES) {
    throw new SendRefused(413, `a message of ${bytes} bytes is over the limit of ${MAX_MESSAGE_BYTES} bytes (128 KB)`);
  }
}

/** One message from POST /message. */
export function singleMessage(body: Buffer, headers: { format?: string; delay?: string; defaultDelay: number }): NewMessage {
  checkSize(body.length);
  return { body, contentType: contentType(headers.format), delaySeconds: delaySeconds(headers.delay, headers.defaultDelay) };
}

const batchSchema = z.object({
  messages: z.array(
    z.object({
      body: z.string(),
      contentType: z.string().optional(),
      delaySecs: z.number().optional(),
    }),
  ),
});

/** The messages of POST /batch. */
export function batchMessages(json: unknown, headers: { delay?: string; defaultDelay: number }): NewMessage[] {
  const parsed = batchSchema.safeParse(json);
  if (!parsed.success) throw new SendRefused(400, `the batch is not workerd's format: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  const { messages } = parsed.data;
  if (messages.length === 0) throw new SendRefused(400, "sendBatch() needs at least one message");
  if (messages.length > MAX_BATCH_MESSAGES) {
    throw new SendRefused(413, `a batch of ${messages.length} messages is over the limit of ${MAX_BATCH_MESSAGES}`);
  }
  const batchDelay = delaySeconds(headers.delay, headers.defaultDelay);
  let total = 0;
  const out = messages.map((m) => {
    const body = Buffer.from(m.body, "base64");
    checkSize(body.length);
    total += body.length;
    return { body, contentType: contentType(m.contentType), delaySeconds: delaySeconds(m.delaySecs, batchDelay) };
  });
  if (total > MAX_BATCH_BYTES)
    throw new SendRefused(413, `a batch of ${total} bytes is over the limit of ${MAX_BATCH_BYTES} bytes (256 KB)`);
  return out;
}
