import { describe, expect, it } from "vitest";
import { databaseApiError } from "../../lib/sdk/db-errors.ts";

/** An error as postgres.js rejects a query with it: the query attached. */
const underQuery = (err: Error) => Object.assign(err, { query: "select 1" });

describe("database errors a client sees", () => {
  it("a database that cannot be reached is a 503 to retry", () => {
    expect(databaseApiError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6432"), { code: "ECONNREFUSED" }))?.status).toBe(503);
    // workerd's socket closing under a pooled connection, before its close event was seen.
    expect(databaseApiError(underQuery(new TypeError("This WritableStream has been closed.")))?.status).toBe(503);
  });

  it("a client that cannot run (a module or function it needs is missing) is not an outage: no 503", () => {
    // A workerd bundle on Deno: cloudflare:sockets is not there, postgres.js's connect is not a function.
    expect(databaseApiError(underQuery(new TypeError("connect is not a function")))).toBeUndefined();
    expect(databaseApiError(underQuery(new TypeError('Unsupported scheme "cloudflare" for module "cloudflare:sockets"')))).toBeUndefined();
    expect(databaseApiError(underQuery(new ReferenceError("Deno is not defined")))).toBeUndefined();
  });
});
