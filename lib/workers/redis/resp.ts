/**
 * RESP2 on the wire: commands encoded as arrays of bulk strings, replies parsed by `redis-parser` (the parser
 * ioredis uses; it runs in workerd under `nodejs_compat`). A reply is what the parser returns with `returnBuffers`:
 * bulk and status strings as bytes, integers as numbers, nil as null, arrays as arrays, and an error inside an
 * array (EXEC, Lua) as an Error element; an error reply at the top level is an Error too.
 */
import { Buffer } from "node:buffer";
import RedisParser from "redis-parser";

export type Reply = null | number | Uint8Array | Error | Reply[];

const encoder = new TextEncoder();

/**
 * The bytes of `commands`, one after the other, ready for a single write. Command names go lower-case, as ioredis
 * sends them for the proxy: Redis repeats the name in some errors ("unknown command 'nosuchcommand'"), and the
 * object's answers are the proxy's.
 */
export function encodeCommands(commands: readonly (readonly string[])[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (part: Uint8Array) => {
    parts.push(part);
    size += part.length;
  };
  for (const command of commands) {
    let head = `*${command.length}\r\n`;
    for (const [i, word] of command.entries()) {
      const bytes = encoder.encode(i === 0 ? word.toLowerCase() : word);
      push(encoder.encode(`${head}$${bytes.length}\r\n`));
      push(bytes);
      head = "\r\n";
    }
    push(encoder.encode(head));
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export interface ReplyReader {
  /** Feeds bytes as they arrive; calls onReply once per whole reply, in order. */
  feed(bytes: Uint8Array): void;
}

/** A parser for one connection's replies; `onFatal` when the bytes are not RESP (the connection must be closed). */
export function replyReader(onReply: (reply: Reply) => void, onFatal: (error: Error) => void): ReplyReader {
  const parser = new RedisParser({
    returnBuffers: true,
    returnReply: (reply) => onReply(reply as Reply),
    returnError: (error) => onReply(error),
    returnFatalError: onFatal,
  });
  return {
    // The parser wants a Node Buffer (it copies partial replies with Buffer methods): a view, not a copy.
    feed: (bytes) => parser.execute(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
  };
}
