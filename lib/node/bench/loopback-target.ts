/**
 * What the plain-worker and outbound rows reach out to, in a process of its own: `node loopback-target.ts http`
 * answers every request 200 "ok"; `node loopback-target.ts fail` answers every request 503 "fail" (an upstream that is
 * down); `node loopback-target.ts echo` sends back whatever a TCP connection writes. Prints `{"port":N}` once it
 * listens on a free loopback port; SIGTERM or SIGINT closes it.
 */
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import type { AddressInfo } from "node:net";

const kind = process.argv[2];
if (kind !== "http" && kind !== "fail" && kind !== "echo") {
  console.error("usage: node loopback-target.ts http|fail|echo");
  process.exit(2);
}
const server =
  kind === "http"
    ? createHttpServer((_req, res) => res.writeHead(200, { "content-type": "text/plain", "content-length": "2" }).end("ok"))
    : kind === "fail"
      ? createHttpServer((_req, res) => res.writeHead(503, { "content-type": "text/plain", "content-length": "4" }).end("fail"))
      : createTcpServer((socket) => {
          socket.on("error", () => socket.destroy());
          socket.pipe(socket);
        });
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })));
const close = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once("SIGTERM", close);
process.once("SIGINT", close);
