/**
 * A listening TCP socket made here and handed to workerd as an inherited file descriptor
 * (`--socket-fd http=3`). This lets tests use port 0 (the kernel picks a free port and we know it before
 * workerd starts) and lets several workerd processes share one socket.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import type { AddressInfo, Server } from "node:net";
import { UserError } from "../common/user-error.ts";

export interface ListenSocket {
  fd: number;
  host: string;
  port: number;
  /** Closes this process's copy; children that inherited the fd keep serving on it. */
  close(): void;
}

/** A failed bind: the operator's mistake when the port is taken (the message says what to do), else as it is. */
export function bindError(host: string, port: number, err: NodeJS.ErrnoException): Error {
  if (err.code !== "EADDRINUSE") return err;
  return new UserError(`${host}:${port} is already in use: stop what is listening there, or choose another port with PORT=...`, {
    cause: err,
  });
}

/** Binds and listens on host:port (0 = any free port) and returns the raw fd. */
export async function listenSocket(host: string, port: number): Promise<ListenSocket> {
  // Never accept here: the handle's fd is given to workerd and this process's copy is closed right after
  // spawning, with no I/O in between, so Node's event loop should never accept a connection; if it ever
  // does, the connection is reset (clients retry) rather than left hanging.
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(bindError(host, port, err)));
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

/** A listening socket this process keeps open (without ever accepting on it) to hand to many children. */
export interface HeldSocket {
  fd: number;
  host: string;
  port: number;
  /** A ListenSocket view for startWorkerd whose close() leaves the held socket open. */
  lend(): ListenSocket;
  /** Closes this process's copy; children keep serving on theirs. */
  close(): void;
}

interface RawHandle {
  fd: number;
  close(): void;
}

// Echoes the handle it is sent back to its parent, then exits. Run with `node -e` (no file to load).
const ECHO = 'process.once("message",(m,h)=>process.send(m,h,()=>{h.close();process.disconnect();}));';

/**
 * Binds and listens on host:port like `listenSocket`, then keeps a copy of the socket that Node never polls,
 * so that workerd processes started later (restarts, the next release) can inherit the same socket: clients
 * never see it close, and connections waiting in its queue are accepted by whichever process is serving.
 *
 * Node has no dup(): a listening net.Server is always accepting, and a socket cannot be reopened through
 * /proc. So the server's handle is sent to a short-lived child over IPC (SCM_RIGHTS) and sent back as a raw
 * handle, which Node keeps open but never reads from; then the server itself is closed. For the few
 * milliseconds in between, a connection could be accepted here and reset: that only happens while starting.
 */
export async function heldSocket(host: string, port: number): Promise<HeldSocket> {
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(bindError(host, port, err)));
    server.listen({ host, port, backlog: 1024, exclusive: true }, resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  try {
    const handle = await echoHandle((server as unknown as { _handle: unknown })._handle);
    let open = true;
    return {
      fd: handle.fd,
      host,
      port: bound,
      lend: () => ({ fd: handle.fd, host, port: bound, close: () => {} }),
      close: () => {
        if (open) handle.close();
        open = false;
      },
    };
  } finally {
    server.close();
  }
}

async function echoHandle(handle: unknown): Promise<RawHandle> {
  const child = spawn(process.execPath, ["-e", ECHO], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  try {
    return await new Promise<RawHandle>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`the socket copier exited (code ${code}) before answering`)));
      child.once("message", (_message, received) => {
        const raw = received as RawHandle | undefined;
        if (!raw || typeof raw.fd !== "number" || raw.fd < 0)
          reject(new Error("Could not copy the listening socket (only supported on Linux and macOS)"));
        else resolve(raw);
      });
      child.send("socket", handle as Parameters<typeof child.send>[1]);
    });
  } finally {
    child.kill();
  }
}
