/**
 * The parts of `redis-parser` (the RESP parser ioredis uses; CommonJS, no types of its own) and of `node:buffer`
 * that the Redis object uses. workerd implements `node:buffer` under `nodejs_compat`, but @cloudflare/workers-types
 * does not declare Node's modules, and the workerd-side type check must not pull in all of @types/node.
 */
declare module "node:buffer" {
  /** Node's Buffer: a Uint8Array with more methods; only making one over received bytes is used here. */
  export const Buffer: {
    from(bytes: ArrayBufferLike, byteOffset?: number, length?: number): Uint8Array;
  };
}

declare module "redis-parser" {
  interface ParserOptions {
    /** A whole reply (bulk strings as Buffers with returnBuffers; integers as numbers; nil as null; arrays). */
    returnReply(reply: unknown): void;
    /** An error reply at the top level (errors inside arrays are elements of the array). */
    returnError(error: Error): void;
    /** Bytes that are not RESP: the stream cannot be trusted any more. */
    returnFatalError?(error: Error): void;
    returnBuffers?: boolean;
    stringNumbers?: boolean;
  }
  class RedisParser {
    constructor(options: ParserOptions);
    /** Feeds received bytes (a Node Buffer); calls returnReply / returnError for each whole reply in them. */
    execute(data: Uint8Array): void;
    reset(): void;
  }
  export default RedisParser;
}
