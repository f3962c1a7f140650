/**
 * The graphql function as npm start serves it (gateway, workerd, PostgreSQL through PgBouncer, Redis through the
 * proxy): data, the REST functions' authentication and authorization rules, hostile queries, masked errors and
 * persisted operations (the graphql-probe fixture runs in trusted-documents mode). Then on miniflare with a database
 * proxy that counts the queries: lists resolve their related rows in batches, never one query per item.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateUp } from "../../lib/node/data/migrations.ts";
import { projectPaths } from "../../lib/node/common/paths.ts";
import { functionOnMiniflare } from "../../lib/node/dev/testing.ts";
import type { FunctionUnderTest } from "../../lib/node/dev/testing.ts";
import { bearer, mintToken, randomIp, signUp, testJwtSecret } from "../helpers/auth.ts";
import type { SignedUp } from "../helpers/auth.ts";
import { freshDatabase } from "../helpers/isolated.ts";
import type { FreshDatabase } from "../helpers/isolated.ts";
import { startStack } from "../helpers/stack.ts";
import type { Answer, Stack } from "../helpers/stack.ts";

interface GqlError {
  message: string;
  path?: string[];
  extensions: { code: string; requestId: string; status?: number; retryAfter?: number; issues?: unknown[] };
}
interface GqlBody {
  data?: Record<string, never> | null;
  errors?: GqlError[];
}
type GqlAnswer = Answer & { gql: GqlBody };

const CREATE_PER_MINUTE = 4;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    apiSurface: true,
    fixtures: ["graphql-probe", "graphql-inline"],
    vars: { graphql: { CREATE_PER_MINUTE }, links: { CREATE_PER_MINUTE } },
  });
}, 180_000);
afterAll(() => stack?.stop());

interface GqlOptions {
  variables?: Record<string, unknown>;
  token?: string;
  headers?: Record<string, string>;
  ip?: string;
  path?: string;
  /** The whole body, in place of {query, variables}. */
  body?: unknown;
}

async function gql(query: string, { variables, token, headers = {}, ip = randomIp(), path = "/graphql", body }: GqlOptions = {}) {
  const answer = await stack.call(path, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json",
      "x-forwarded-for": ip,
      ...(token ? bearer(token) : {}),
      ...headers,
    },
    body: JSON.stringify(body ?? { query, variables }),
  });
  return { ...answer, gql: answer.body as unknown as GqlBody } as GqlAnswer;
}

/** The one error of an answer, with the request id of the response in it. */
function onlyError(r: GqlAnswer): GqlError {
  expect(r.gql.errors, r.text).toHaveLength(1);
  const [error] = r.gql.errors ?? [];
  expect(error?.extensions.requestId).toBe(r.requestId);
  return error as GqlError;
}

const restCreate = (token: string, body: Record<string, unknown>, ip = randomIp()) =>
  stack.call("/links", {
    method: "POST",
    headers: { "content-type": "application/json", "x-forwarded-for": ip, ...bearer(token) },
    body: JSON.stringify(body),
  });

const code = (label: string) => `${label}-${crypto.randomUUID().slice(0, 8)}`;
const CREATE = "mutation($url: String!, $code: String) { createLink(url: $url, code: $code) { code url clicks createdAt expiresAt } }";

describe("graphql: data and the REST functions' rules", () => {
  let ada: SignedUp;
  let bob: SignedUp;
  beforeAll(async () => {
    [ada, bob] = await Promise.all([signUp(stack.sup.url), signUp(stack.sup.url)]);
  });

  it("answers data; a link made either way is seen the same by both", async () => {
    const viaRest = code("rest");
    expect((await restCreate(ada.accessToken, { url: "https://example.com/rest", code: viaRest })).status).toBe(201);
    const created = await gql(CREATE, { token: ada.accessToken, variables: { url: "https://example.com/gql", code: code("gql") } });
    expect(created.status).toBe(200);
    const viaGql = created.gql.data?.createLink as unknown as { code: string; url: string; clicks: number };
    expect(viaGql).toMatchObject({ url: "https://example.com/gql", clicks: 0 });

    // REST reads the GraphQL-made link, GraphQL reads the REST-made one, field for field.
    const stats = await stack.call(`/links/${viaGql.code}/stats`);
    expect(stats.body).toEqual(created.gql.data?.createLink);
    const read = await gql("query($code: String!) { link(code: $code) { code url clicks createdAt expiresAt } }", {
      variables: { code: viaRest },
    });
    expect(read.gql).toEqual({ data: { link: (await stack.call(`/links/${viaRest}/stats`)).body } });
    // The redirect counts a click; GraphQL sees it as the stats route does (pending in Redis until the roll-up).
    expect((await stack.call(`/links/${viaRest}`)).status).toBe(302);
    await expect
      .poll(async () => ((await gql(`{ link(code: "${viaRest}") { clicks } }`)).gql.data?.link as unknown as { clicks: number }).clicks)
      .toBe(1);

    const me = await gql("{ me { email role links(first: 10) { code } } }", { token: ada.accessToken });
    expect(me.gql.data?.me).toMatchObject({ email: ada.email, role: "user" });
    const mine = (me.gql.data?.me as unknown as { links: { code: string }[] }).links.map((l) => l.code);
    expect(mine).toEqual(expect.arrayContaining([viaRest, viaGql.code]));

    const page = await gql("{ links(first: 100) { code } }");
    expect((page.gql.data?.links as unknown as { code: string }[]).map((l) => l.code)).toEqual(
      expect.arrayContaining([viaRest, viaGql.code]),
    );
  });

  it("refuses what REST refuses, with the same codes: no or bad credentials, a non-owner, an API key without an account", async () => {
    const wanted = code("anon");
    const anon = await gql(CREATE, { variables: { url: "https://example.com/x", code: wanted } });
    expect(onlyError(anon)).toMatchObject({ path: ["createLink"], extensions: { code: "unauthorized", status: 401 } });
    expect(await stack.sql`select 1 from links where code = ${wanted}`).toHaveLength(0);
    const forged = await gql(CREATE, { token: await mintToken("not-the-secret"), variables: { url: "https://example.com/x" } });
    expect(onlyError(forged).extensions.code).toBe("invalid_token");
    const badInput = await gql(CREATE, { token: ada.accessToken, variables: { url: "ftp://example.com/x" } });
    expect(onlyError(badInput).extensions).toMatchObject({ code: "invalid_input", issues: [{ path: "url" }] });

    const adas = code("owned");
    expect(
      (await gql(CREATE, { token: ada.accessToken, variables: { url: "https://example.com/o", code: adas } })).gql.errors,
    ).toBeUndefined();
    const taken = await gql(CREATE, { token: bob.accessToken, variables: { url: "https://example.com/o", code: adas } });
    expect(onlyError(taken).extensions.code).toBe("code_taken");
    const stolen = await gql(`mutation { deleteLink(code: "${adas}") }`, { token: bob.accessToken });
    expect(onlyError(stolen).extensions).toMatchObject({ code: "forbidden", status: 403 });
    expect(await stack.sql`select 1 from links where code = ${adas}`).toHaveLength(1);

    // The owner is shown to its user and to admins only.
    const ownerOf = async (token?: string) =>
      ((await gql(`{ link(code: "${adas}") { owner { email } } }`, { token })).gql.data?.link as unknown as { owner: unknown }).owner;
    expect(await ownerOf(ada.accessToken)).toEqual({ email: ada.email });
    expect(await ownerOf(bob.accessToken)).toBeNull();
    expect(await ownerOf()).toBeNull();
    const admin = await mintToken(stack.jwtSecret, { role: "admin" });
    expect(await ownerOf(admin)).toEqual({ email: ada.email });
    expect((await gql(`mutation { deleteLink(code: "${adas}") }`, { token: admin })).gql).toEqual({ data: { deleteLink: true } });
    expect(onlyError(await gql(`mutation { deleteLink(code: "${adas}") }`, { token: admin })).extensions.code).toBe("not_found");
  });

  it("takes API keys made for links, as the REST routes do", async () => {
    const run = promisify(execFile);
    const cli = (args: string[]) =>
      run(process.execPath, ["scripts/apikey.ts", ...args], { env: { ...process.env, DATABASE_URL: stack.databaseUrl } });
    const keyFor = async (fn: string) =>
      /(wyk_[a-z0-9]{12}_[\w-]{43})/.exec((await cli(["create", fn, "--name", "graphql test"])).stdout)?.[1] ?? "";
    const [linksKey, authKey] = await Promise.all([keyFor("links"), keyFor("auth")]);
    const made = await gql(CREATE, { headers: { "x-api-key": linksKey }, variables: { url: "https://example.com/k", code: code("key") } });
    const link = made.gql.data?.createLink as unknown as { code: string };
    expect((await stack.sql`select owner from links where code = ${link.code}`)[0]?.owner).toBe(`key:${linksKey.slice(4, 16)}`);
    const other = await gql(CREATE, { headers: { "x-api-key": authKey }, variables: { url: "https://example.com/k" } });
    expect(onlyError(other).extensions.code).toBe("forbidden");
    const me = await gql("{ me { email } }", { headers: { "x-api-key": linksKey } });
    expect(onlyError(me).extensions.code).toBe("forbidden");
  });

  it("creates links out of the same rate-limit bucket as POST /links", async () => {
    const ip = randomIp();
    expect((await restCreate(ada.accessToken, { url: "https://example.com/r1" }, ip)).status).toBe(201);
    expect((await restCreate(ada.accessToken, { url: "https://example.com/r2" }, ip)).status).toBe(201);
    for (let i = 0; i < CREATE_PER_MINUTE - 2; i++) {
      expect((await gql(CREATE, { token: ada.accessToken, ip, variables: { url: "https://example.com/g" } })).gql.errors).toBeUndefined();
    }
    const limited = await gql(CREATE, { token: ada.accessToken, ip, variables: { url: "https://example.com/g" } });
    expect(onlyError(limited).extensions).toMatchObject({ code: "too_many_requests", status: 429, retryAfter: expect.any(Number) });
    expect((await restCreate(ada.accessToken, { url: "https://example.com/r3" }, ip)).status).toBe(429);
  });

  it("answers a page size out of bounds with invalid_input", async () => {
    for (const first of [0, -1, 101])
      expect(onlyError(await gql(`{ links(first: ${first}) { code } }`)).extensions.code).toBe("invalid_input");
    expect(onlyError(await gql('{ links(before: "0") { code } }')).extensions.code).toBe("invalid_input");
  });
});

/** Hostile requests: each is answered quickly with a GraphQL error (or the platform's 413) and runs nothing. */
const nested = (depth: number) => {
  let inner = "code";
  for (let i = 0; i < depth; i++) inner = i % 2 === 0 ? `owner { links { ${inner} } }` : `links { ${inner} }`;
  return `{ links { ${inner} } }`;
};
const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: link(code: "abc") { code }`).join(" ")} }`;
const fragmentBomb = () => {
  let fragments = "fragment F0 on Link { code url }\n";
  for (let i = 1; i < 25; i++) fragments += `fragment F${i} on Link { ...F${i - 1} ...F${i - 1} }\n`;
  return `{ links { ...F24 } }\n${fragments}`;
};

const hostile: { name: string; body: unknown; status: number; code: string }[] = [
  { name: "deep nesting", body: { query: nested(10) }, status: 400, code: "query_too_deep" },
  { name: "an alias bomb", body: { query: aliases(16) }, status: 400, code: "too_many_aliases" },
  { name: "a large alias bomb (stopped while parsing)", body: { query: aliases(400) }, status: 400, code: "GRAPHQL_PARSE_FAILED" },
  {
    name: "a fragment cycle",
    body: { query: "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }" },
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  { name: "fragments spread 2^24 times", body: { query: fragmentBomb() }, status: 400, code: "query_too_complex" },
  { name: "a huge page", body: { query: "{ links(first: 1000000) { code } }" }, status: 400, code: "query_too_costly" },
  {
    name: "nested lists that multiply (sizes in variables)",
    body: { query: "query($n: Int) { links(first: $n) { owner { links(first: $n) { code } } } }", variables: { n: 100 } },
    status: 400,
    code: "query_too_costly",
  },
  {
    name: "a directive flood",
    body: { query: `{ links { code ${"@include(if: true) ".repeat(40)}} }` },
    status: 400,
    code: "too_many_directives",
  },
  {
    name: "introspection",
    body: { query: "{ __schema { types { name fields { name } } } }" },
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    name: "a batch over the limit",
    body: Array.from({ length: 6 }, () => ({ query: "{ links { code } }" })),
    status: 413,
    code: "BAD_REQUEST",
  },
  // A batch answers 200 with one result per item; the item here is not an operation.
  { name: "a batch of batches", body: [[{ query: "{ links { code } }" }]], status: 200, code: "BAD_REQUEST" },
  { name: "variables that are not an object", body: { query: "{ links { code } }", variables: [1, 2] }, status: 400, code: "BAD_REQUEST" },
  { name: "no query", body: { variables: {} }, status: 400, code: "no_query" },
  { name: "a batch whose item is not an object", body: [null], status: 200, code: "BAD_REQUEST" },
  {
    name: "an id that names Object's own properties",
    body: { documentId: "__proto__" },
    status: 400,
    code: "persisted_operation_not_found",
  },
  { name: "an id of another type", body: { documentId: 42 }, status: 400, code: "no_query" },
];

describe("graphql: hostile queries", () => {
  it.each(hostile)("answers $name with $status $code at once", async ({ body, status, code: expected }) => {
    const started = performance.now();
    const r = await gql("", { body });
    const ms = performance.now() - started;
    expect(r.status, r.text).toBe(status);
    const results = (Array.isArray(r.body) ? r.body : [r.body]) as GqlBody[];
    for (const result of results) expect(result.data ?? undefined).toBeUndefined();
    const errors = results.flatMap((result) => result.errors ?? []);
    const codes = errors.map((e) => e.extensions.code);
    expect(codes).toContain(expected);
    for (const e of errors) expect(e.extensions.requestId).toBe(r.requestId);
    expect(ms).toBeLessThan(2000); // a bound for "refused before it costs anything", not a speed measurement
  });

  it("costs each request with its own variables: a cheap run of a document never lets an expensive run through", async () => {
    const token = (await signUp(stack.sup.url)).accessToken;
    // The same text each time (the same parsed document): what changes is a directive's variable, a page size sent
    // as null then left to its default, and a variable missing then given.
    const skip = "query Q($s: Boolean!) { links(first: 100) { owner { links(first: 100) @skip(if: $s) { code } } } }";
    expect((await gql(skip, { token, variables: { s: true } })).gql.errors).toBeUndefined();
    expect(onlyError(await gql(skip, { token, variables: { s: false } })).extensions.code).toBe("query_too_costly");
    const byDefault = "query D($n: Int = 100) { links(first: $n) { owner { links(first: $n) { code } } } }";
    expect(onlyError(await gql(byDefault, { variables: { n: null } })).extensions.code).not.toBe("query_too_costly");
    expect(onlyError(await gql(byDefault)).extensions.code).toBe("query_too_costly");
    const needs = "query N($code: String!) { link(code: $code) { code } }";
    expect((await gql(needs)).gql.errors?.[0]?.message).toMatch(/\$code/);
    expect((await gql(needs, { variables: { code: "no-such-link" } })).gql).toEqual({ data: { link: null } });
  });

  it("answers JSON that does not parse in a GET's variables, a form post and HEAD as a client's mistake", async () => {
    for (const part of ["variables", "extensions"]) {
      const r = await stack.call(`/graphql?query=${encodeURIComponent("{ links { code } }")}&${part}=%7B`, {
        headers: { accept: "application/graphql-response+json" },
      });
      expect(r.status, r.text).toBe(400);
      expect((r.body as unknown as GqlBody).errors?.[0]?.extensions.code).toBe("BAD_REQUEST");
    }
    const form = await stack.call("/graphql", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "query=%7B+links+%7B+code+%7D+%7D",
    });
    expect(form.status).toBe(415);
    const head = await stack.call(`/graphql?query=${encodeURIComponent("{ links(first: 1) { code } }")}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.text).toBe("");
  });

  it("hides field suggestions, and refuses a document over the body limit with the platform's 413", async () => {
    const typo = await gql("{ lnks { code } }");
    expect(onlyError(typo).message).not.toMatch(/Did you mean/);
    const big = await gql("", { body: { query: `{ links { code } }${" ".repeat(70_000)}` } });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: { code: "payload_too_large", requestId: big.requestId } });
  });

  it("serves normal queries while hostile ones arrive side by side", async () => {
    const flood = Array.from({ length: 40 }, (_, i) => gql("", { body: hostile[i % hostile.length]?.body }));
    const normal = Array.from({ length: 10 }, () => gql("{ links(first: 5) { code } }"));
    const answers = await Promise.all([...flood, ...normal]);
    answers.slice(0, 40).forEach((a, i) => expect(a.status).toBe(hostile[i % hostile.length]?.status));
    for (const a of answers.slice(40)) expect({ status: a.status, errors: a.gql.errors }).toEqual({ status: 200, errors: undefined });
  });

  it("answers on every path its routes match, in the gateway's isolate too (URL with the prefix)", async () => {
    // Past the few servers made per path, the rest share one that takes any path.
    for (const path of [
      "/graphql-inline",
      "/graphql-inline/v/a",
      "/graphql-inline/v/b",
      "/graphql-inline/v/c",
      "/graphql-inline/v/d",
      "/graphql-inline/v/e",
    ]) {
      const post = await gql("{ path }", { path });
      expect(post.gql, `POST ${path}: ${post.text}`).toEqual({ data: { path: path.slice("/graphql-inline".length) || "/" } });
      const get = await stack.call(`${path}?query=${encodeURIComponent("{ path }")}`, {
        headers: { accept: "application/graphql-response+json" },
      });
      expect(get.body, `GET ${path}: ${get.text}`).toEqual({ data: { path: path.slice("/graphql-inline".length) || "/" } });
    }
    expect((await gql("{ path }", { path: "/graphql-inline/elsewhere" })).status).toBe(404);
    // Paths as sent, escapes and characters a URL pattern would read as syntax included: served, never a 500.
    for (const path of ["/graphql-inline/v/%61", "/graphql-inline/v/%28", "/graphql-inline/v/(x)", "/graphql-inline/v/:id*"]) {
      const r = await gql("{ path }", { path });
      expect(r.status, `POST ${path}: ${r.text}`).toBe(200);
      expect(r.gql.data, `POST ${path}: ${r.text}`).toHaveProperty("path");
    }
  });

  it("runs a batch within the limit, and GET only for queries", async () => {
    const batch = await gql("", { body: Array.from({ length: 5 }, () => ({ query: "{ links(first: 1) { code } }" })) });
    expect(batch.status).toBe(200);
    expect(batch.body).toHaveLength(5);
    const viaGet = await stack.call(`/graphql?query=${encodeURIComponent("{ links(first: 1) { code } }")}`);
    expect(viaGet.status).toBe(200);
    const mutationViaGet = await stack.call(`/graphql?query=${encodeURIComponent('mutation { deleteLink(code: "abc") }')}`);
    expect(mutationViaGet.status).toBe(405);
    // No GraphiQL outside development: a browser gets a JSON error, not a page.
    const page = await stack.call("/graphql", { headers: { accept: "text/html" } });
    expect(page.status, page.text).toBeGreaterThanOrEqual(400);
    expect(page.res.headers.get("content-type") ?? "", page.text).not.toMatch(/html/);
  });
});

describe("graphql: masked errors and persisted operations", () => {
  it("masks what a resolver did not mean (no message, stack or SQL), logs it with the request id, keeps partial data", async () => {
    for (const id of ["boom", "sql-boom"]) {
      const r = await gql("", { path: "/graphql-probe", body: { documentId: id } });
      expect(r.status).toBe(200);
      const error = onlyError(r);
      expect(error).toMatchObject({ message: "Internal error", extensions: { code: "internal_error" } });
      expect(r.text).not.toMatch(/secret|srv|no_such_table|stack|select/i);
      if (id === "boom") expect(r.gql.data).toEqual({ fine: "fine", boom: null });
      // The log has it all, under the request id (the error's details follow on the next lines).
      await expect
        .poll(() => {
          const at = stack.logs.findIndex((l) => l.includes(`unhandled error in GraphQL`) && l.includes(r.requestId ?? "?"));
          return at >= 0 && stack.logs.slice(at, at + 8).some((l) => /secret|no_such_table/.test(l));
        })
        .toBe(true);
    }
    const meant = onlyError(await gql("", { path: "/graphql-probe", body: { documentId: "conflict" } }));
    expect(meant).toMatchObject({ message: "That is taken", extensions: { code: "probe_conflict", status: 409 } });
  });

  it("in trusted-documents mode runs only persisted operations", async () => {
    expect((await gql("", { path: "/graphql-probe", body: { documentId: "fine" } })).gql).toEqual({ data: { fine: "fine" } });
    const arbitrary = await gql("{ fine }", { path: "/graphql-probe" });
    expect(arbitrary.status).toBe(400);
    expect(onlyError(arbitrary).extensions.code).toBe("persisted_operations_only");
    const unknown = await gql("", { path: "/graphql-probe", body: { documentId: "nope" } });
    expect(onlyError(unknown).extensions.code).toBe("persisted_operation_not_found");
  });

  it("serves the graphql function's persisted operations by documentId and by Apollo's hash, beside arbitrary queries", async () => {
    const file = join(projectPaths().functions, "graphql", "persisted-operations.json");
    const operations = JSON.parse(await readFile(file, "utf8")) as Record<string, string>;
    // Each id is the SHA-256 of its document: a client computes the same id from the same text.
    for (const [id, document] of Object.entries(operations)) expect(createHash("sha256").update(document).digest("hex")).toBe(id);
    const linkByCode = Object.keys(operations).find((id) => operations[id]?.startsWith("query LinkByCode")) ?? "";
    const viaId = await gql("", { body: { documentId: `sha256:${linkByCode}`, variables: { code: "no-such-link" } } });
    expect(viaId.gql).toEqual({ data: { link: null } });
    const viaApq = await gql("", {
      body: { variables: { code: "no-such-link" }, extensions: { persistedQuery: { version: 1, sha256Hash: linkByCode } } },
    });
    expect(viaApq.gql).toEqual({ data: { link: null } });
    // As a GET (cacheable by URL): the id and the variables in the query string.
    const viaGet = await stack.call(
      `/graphql?${new URLSearchParams({ documentId: `sha256:${linkByCode}`, variables: '{"code":"no-such-link"}' }).toString()}`,
    );
    expect(viaGet.body).toEqual({ data: { link: null } });
  });
});

/** A TCP proxy to PostgreSQL that counts the queries clients send (Parse or simple Query messages). */
class CountingProxy {
  queries = 0;
  private server: Server;
  private sockets = new Set<Socket>();
  private target: { host: string; port: number };
  constructor(target: { host: string; port: number }) {
    this.target = target;
    this.server = createServer((client) => this.accept(client));
  }
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as AddressInfo).port;
  }
  private accept(client: Socket) {
    const upstream = createConnection(this.target);
    this.sockets.add(client).add(upstream);
    let buffer = Buffer.alloc(0);
    let startup = true;
    client.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (startup) {
          if (buffer.length < 8) break;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) break;
          if (buffer.readInt32BE(4) !== 80877103) startup = false; // an SSLRequest comes before the startup message
          buffer = buffer.subarray(length);
        } else {
          if (buffer.length < 5) break;
          const length = buffer.readInt32BE(1);
          if (buffer.length < 1 + length) break;
          const type = String.fromCharCode(buffer[0] ?? 0);
          if (type === "P" || type === "Q") this.queries++;
          buffer = buffer.subarray(1 + length);
        }
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    const close = () => (client.destroy(), upstream.destroy());
    client.on("close", close).on("error", close);
    upstream.on("close", close).on("error", close);
  }
  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe("graphql: no N+1 (queries counted at a proxy in front of PostgreSQL)", () => {
  let db: FreshDatabase;
  let proxy: CountingProxy;
  let fn: FunctionUnderTest;
  const jwtSecret = testJwtSecret();
  const users: { id: string; email: string }[] = [];
  beforeAll(async () => {
    db = await freshDatabase();
    await migrateUp(db.url, projectPaths().migrations);
    const url = new URL(db.url);
    proxy = new CountingProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.port = String(await proxy.listen());
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    for (let u = 0; u < 10; u++) {
      const [user] = await sql<{ id: string; email: string }[]>`
        insert into auth_users (email, password_hash) values (${`n1-${u}@example.com`}, 'x') returning id, email`;
      users.push(user as { id: string; email: string });
      for (let l = 0; l < 3; l++) {
        await sql`insert into links (code, url, owner, created_at)
          values (${`n1-${u}-${l}`}, ${`https://example.com/${u}/${l}`}, ${`user:${user?.id}`}, now() - ${`${u * 3 + l} seconds`}::interval)`;
      }
    }
    await sql.end();
    fn = await functionOnMiniflare("graphql", { bindings: { DATABASE_URL: url.toString(), AUTH_JWT_SECRET: jwtSecret } });
  }, 120_000);
  afterAll(async () => {
    await fn?.dispose();
    await proxy?.close();
    await db?.dispose();
  });

  async function counted(query: string, token?: string): Promise<{ body: GqlBody; queries: number }> {
    proxy.queries = 0;
    const res = await fn.fetch("/", {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? bearer(token) : {}) },
      body: JSON.stringify({ query }),
    });
    const body = (await res.json()) as GqlBody;
    return { body, queries: proxy.queries };
  }

  it("reads 30 links, their 10 owners and each owner's links in 3 queries", async () => {
    const admin = await mintToken(jwtSecret, { role: "admin" });
    const { body, queries } = await counted("{ links(first: 30) { code clicks owner { email links(first: 3) { code } } } }", admin);
    expect(body.errors).toBeUndefined();
    const links = body.data?.links as unknown as { code: string; owner: { email: string; links: { code: string }[] } }[];
    expect(links).toHaveLength(30);
    for (const link of links) {
      const u = Number(link.code.split("-")[1]);
      expect(link.owner.email).toBe(users[u]?.email);
      expect(link.owner.links.map((l) => l.code)).toEqual([`n1-${u}-0`, `n1-${u}-1`, `n1-${u}-2`]);
    }
    // One for the page, one for the owners, one for the owners' links; one per item would be 1 + 30 + 30.
    expect(queries).toBe(3);
  });

  it("under npm run dev (WORKYARD_DEV=1): introspection, field suggestions and GraphiQL from the project's own files", async () => {
    const dev = await functionOnMiniflare("graphql", { bindings: { DATABASE_URL: db.url, AUTH_JWT_SECRET: jwtSecret, WORKYARD_DEV: "1" } });
    try {
      const post = async (query: string) =>
        (await (
          await dev.fetch("/", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) })
        ).json()) as GqlBody;
      expect((await post("{ __schema { queryType { name } } }")).data).toEqual({ __schema: { queryType: { name: "Query" } } });
      expect((await post("{ lnks { code } }")).errors?.[0]?.message).toMatch(/Did you mean "links"/);
      const page = await dev.fetch("/", { headers: { accept: "text/html" } });
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain("GraphiQL");
      // Everything the page loads is inline or from this origin: no script, style or font from another host.
      expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
      expect(page.headers.get("content-security-policy")).toMatch(/connect-src 'self'/);
      // Production (the same function without WORKYARD_DEV) has neither.
      expect((await counted("{ __schema { queryType { name } } }")).body.errors?.[0]?.message).toMatch(/introspection has been disabled/);
    } finally {
      await dev.dispose();
    }
  });

  it("reads links asked for by code under aliases in one query", async () => {
    const { body, queries } = await counted(
      `{ ${Array.from({ length: 10 }, (_, i) => `l${i}: link(code: "n1-${i}-0") { code }`).join(" ")} }`,
    );
    expect(Object.keys(body.data ?? {})).toHaveLength(10);
    expect(queries).toBe(1);
  });
});
