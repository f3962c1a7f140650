/**
 * A listening TCP socket made here and handed to workerd as an inherited file descriptor
 * (`--socket-fd http=3`). This lets tests use port 0 (the kernel picks a free port and we know it before
 * workerd starts) and lets several workerd processes share one socket.
 */
import { createServer } from "node:net";
import type { AddressInfo, Server } from "node:net";

export interface ListenSocket {
  fd: number;
  host: string;
  port: number;
  /** Closes this process's copy; children that inherited the fd keep serving on it. */
  close(): void;
}

export class PortInUseError extends Error {
  constructor(host: string, port: number, options?: { cause?: unknown }) {
    super(`${host}:${port} is already in use: stop what is listening there, or choose another port with PORT=...`, options);
    this.name = "PortInUseError";
  }
}

/** Binds and listens on host:port (0 = any free port) and returns the raw fd. */
export async function listenSocket(host: string, port: number): Promise<ListenSocket> {
  // Never accept here: the handle's fd is given to workerd and this process's copy is closed right after
  // spawning, with no I/O in between, so Node's event loop should never accept a connection; if it ever
  // does, the connection is reset (clients retry) rather than left hanging.
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(err.code === "EADDRINUSE" ? new PortInUseError(host, port, { cause: err }) : err));
    server.listen({ host, port, backlog: 1024, exclusive: true }, resolve);
  });
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) {
    server.close();
    throw new Error("Could not get the listening socket's file descriptor (only supported on Linux and macOS)");
  }
  return { fd, host, port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** A port that is free right now on host (for services that bind their own socket, like PgBouncer). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: 0 }, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}
