/**
 * workerd's producer wire format as the queue service reads it (lib/node/queues/wire.ts): content types, which delay
 * wins (a message's own, then the batch's, then the producer's delivery_delay), and Cloudflare's limits.
 */
import { describe, expect, it } from "vitest";
import { batchMessages, MAX_MESSAGE_BYTES, SendRefused, singleMessage } from "../../lib/node/queues/wire.ts";

const b64 = (text: string) => Buffer.from(text).toString("base64");

describe("POST /message", () => {
  it("takes the format header (v8 when absent, as workerd sends without a contentType) and the delay, else delivery_delay", () => {
    expect(singleMessage(Buffer.from('{"a":1}'), { format: "json", delay: "5", defaultDelay: 30 })).toMatchObject({
      contentType: "json",
      delaySeconds: 5,
    });
    expect(singleMessage(Buffer.from([1, 2]), { defaultDelay: 30 })).toMatchObject({ contentType: "v8", delaySeconds: 30 });
  });

  it("refuses a message over 128 KB, an unknown format and a delay over 12 hours, saying which", () => {
    expect(() => singleMessage(Buffer.alloc(MAX_MESSAGE_BYTES + 1), { format: "bytes", defaultDelay: 0 })).toThrow(
      /131073 bytes is over the limit of 131072 bytes/,
    );
    expect(() => singleMessage(Buffer.from("x"), { format: "yaml", defaultDelay: 0 })).toThrow(/unsupported content type "yaml"/);
    expect(() => singleMessage(Buffer.from("x"), { format: "text", delay: "43201", defaultDelay: 0 })).toThrow(SendRefused);
    expect(() => singleMessage(Buffer.from("x"), { format: "text", delay: "-1", defaultDelay: 0 })).toThrow(/0 to 43200/);
  });
});

describe("POST /batch", () => {
  it("decodes each body, and lets a message's own delay beat the batch's, which beats delivery_delay", () => {
    const messages = batchMessages(
      {
        messages: [
          { body: b64("a"), contentType: "text" },
          { body: b64("b"), contentType: "text", delaySecs: 1 },
        ],
      },
      { delay: "7", defaultDelay: 30 },
    );
    expect(messages.map((m) => [m.body.toString(), m.delaySeconds])).toEqual([
      ["a", 7],
      ["b", 1],
    ]);
    expect(batchMessages({ messages: [{ body: b64("c") }] }, { defaultDelay: 30 })[0]).toMatchObject({
      contentType: "v8",
      delaySeconds: 30,
    });
  });

  it("refuses an empty batch, over 100 messages, over 256 KB in all, and a body that is not workerd's format", () => {
    expect(() => batchMessages({ messages: [] }, { defaultDelay: 0 })).toThrow(/at least one message/);
    const many = { messages: Array.from({ length: 101 }, () => ({ body: b64("x") })) };
    expect(() => batchMessages(many, { defaultDelay: 0 })).toThrow(/101 messages is over the limit of 100/);
    const big = { messages: Array.from({ length: 3 }, () => ({ body: Buffer.alloc(100 * 1024).toString("base64") })) };
    expect(() => batchMessages(big, { defaultDelay: 0 })).toThrow(/307200 bytes is over the limit of 262144 bytes/);
    expect(() => batchMessages({ messages: [{ body: 1 }] }, { defaultDelay: 0 })).toThrow(/not workerd's format/);
  });
});
