/** Miniflare only says "the Workers runtime failed to start" when its port is taken: check first, and say so. */
import { createServer } from "node:net";
import { bindError } from "../runtime/listen-socket.ts";

/** Throws when host:port cannot be bound right now (port 0 always can); a taken port is the operator's mistake (bindError). */
export async function ensurePortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(bindError(host, port, err)));
    server.listen({ host, port, exclusive: true }, resolve);
  });
  await new Promise((resolve) => server.close(resolve));
}
