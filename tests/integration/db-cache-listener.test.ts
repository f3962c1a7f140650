// The read cache's listener (lib/workers/db-cache/listener.ts) when its database cannot be reached: it retries with
// a growing wait, never in a loop. Found by hand: a dropped database made two workerd processes spin at half a core
// each, reconnecting hundreds of times a second.
import { createServer } from "node:net";
import type { AddressInfo, Server } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { InvalidationListener } from "../../lib/workers/db-cache/listener.ts";

/** A FATAL ErrorResponse message of the PostgreSQL protocol. */
function fatal(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`);
  const head = Buffer.alloc(5);
  head.write("E", 0);
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

describe("the read cache's listener", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it("retries a database that refuses it with a growing wait, and serves nothing meanwhile", async () => {
    let connections = 0;
    // Answers every login with PgBouncer's error for a server whose logins keep failing, then closes.
    server = createServer((socket) => {
      connections++;
      socket.once("data", () => socket.end(fatal("08P01", "server login has been failing, try again later (server_login_retry)")));
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const logged: string[] = [];
    const listener = new InvalidationListener({
      url: `postgres://nobody@127.0.0.1:${port}/nothing`,
      origin: "test",
      send: () => Promise.resolve(),
      onWrite: () => {},
      onListening: () => {},
      log: (line) => logged.push(line),
    });
    listener.start();
    await sleep(3500);
    expect(listener.listening).toBe(false);
    // Attempts at 0, 1 and 3 s (waits of 1, 2, 4 s ...): three, where the loop this guards against made hundreds.
    expect(connections).toBeGreaterThan(0);
    expect(connections).toBeLessThanOrEqual(4);
    expect(logged.length).toBe(1);
    expect(logged[0]).toMatch(/cannot listen for invalidations/);
  });
});
