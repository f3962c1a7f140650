/**
 * The sockets a supervisor holds for its whole life (listen-socket.ts's heldSocket): the public one, the internal
 * one on loopback (health, readiness, scheduled dispatch, metrics), and the HTTPS one when TLS is on. Every workerd
 * process of every release accepts on these same sockets, so a restart or a deploy never closes a port.
 */
import { heldSocket } from "./listen-socket.ts";
import type { HeldSocket } from "./listen-socket.ts";

export interface HeldSockets {
  public: HeldSocket;
  internal: HeldSocket;
  https?: HeldSocket;
  /** Where clients go: the HTTPS URL when TLS is on, else the HTTP one. */
  url: string;
  httpUrl: string;
  internalUrl: string;
  close(): void;
}

export interface SocketOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  internalPort: number;
  /** Set when TLS is on. */
  httpsPort?: number;
}

/** Binds the public, internal and (with TLS) HTTPS sockets; closes the ones it made if a later one fails. */
export async function holdSockets({ host, port, internalPort, httpsPort }: SocketOptions): Promise<HeldSockets> {
  const held: HeldSocket[] = [];
  const hold = async (h: string, p: number) => {
    const socket = await heldSocket(h, p);
    held.push(socket);
    return socket;
  };
  try {
    const pub = await hold(host, port);
    const internal = await hold("127.0.0.1", internalPort);
    const https = httpsPort === undefined ? undefined : await hold(host, httpsPort);
    const shown = host.includes(":") ? `[${host}]` : host;
    const httpUrl = `http://${shown}:${pub.port}`;
    return {
      public: pub,
      internal,
      https,
      url: https ? `https://${shown}:${https.port}` : httpUrl,
      httpUrl,
      internalUrl: `http://127.0.0.1:${internal.port}`,
      close: () => held.forEach((s) => s.close()),
    };
  } catch (err) {
    held.forEach((s) => s.close());
    throw err;
  }
}
