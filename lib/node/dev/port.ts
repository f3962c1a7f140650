/** Miniflare only says "the Workers runtime failed to start" when its port is taken: check first, and say so. */
import { createServer } from "node:net";
import { PortInUseError } from "../runtime/listen-socket.ts";

/** Throws PortInUseError when host:port cannot be bound right now (port 0 always can). */
export async function ensurePortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(err.code === "EADDRINUSE" ? new PortInUseError(host, port, { cause: err }) : err));
    server.listen({ host, port, exclusive: true }, resolve);
  });
  await new Promise((resolve) => server.close(resolve));
}
