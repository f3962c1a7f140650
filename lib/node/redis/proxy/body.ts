/** Reads a request body up to a limit; past it, the request is answered 413 without reading further. */
import type { IncomingMessage } from "node:http";
import { ProxyHttpError } from "./errors.ts";
import { bodyTooLargeMessage } from "../../../shared/redis-protocol.ts";

function tooLarge(limit: number): ProxyHttpError {
  return new ProxyHttpError(413, bodyTooLargeMessage(limit), { headers: { connection: "close" } });
}

/** Reads the body of `req`; `declared` is its Content-Length header (0 when absent), checked before reading. */
export function readBody(req: IncomingMessage, limit: number, declared: number): Promise<Buffer> {
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (!failed) resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.once("error", (err) => {
      if (failed) return;
      failed = true;
      reject(err);
    });
  });
}
