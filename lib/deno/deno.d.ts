// The part of Deno's runtime API that lib/deno uses (Deno's own types are not in this project's TypeScript setup).
declare namespace Deno {
  interface NetAddr {
    transport: "tcp" | "udp";
    hostname: string;
    port: number;
  }
  interface ServeHandlerInfo {
    remoteAddr: NetAddr;
  }
  interface HttpServer {
    finished: Promise<void>;
    shutdown(): Promise<void>;
  }
  interface ServeOptions {
    hostname?: string;
    port?: number;
    signal?: AbortSignal;
    onListen?: (addr: NetAddr) => void;
    onError?: (error: unknown) => Response | Promise<Response>;
  }
  function serve(options: ServeOptions, handler: (request: Request, info: ServeHandlerInfo) => Response | Promise<Response>): HttpServer;
  const env: { get(name: string): string | undefined; toObject(): Record<string, string> };
  function addSignalListener(signal: "SIGTERM" | "SIGINT", handler: () => void): void;
  function exit(code?: number): never;
  const cron: ((name: string, schedule: string, handler: () => Promise<void> | void) => Promise<void>) | undefined;
  const version: { deno: string };
  const args: string[];
}
