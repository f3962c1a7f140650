/**
 * Authentication end to end, on the real stack (workerd, PostgreSQL through PgBouncer, Redis through the proxy):
 * the auth function's sign-up, login, refresh rotation with reuse detection, logout and /me; login rate limits;
 * the middleware in another function (links): 401 vs 403, ownership, admins, API keys made by `npm run apikey`;
 * CORS from settings, secure headers, and HTML escaped by construction.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey, revokeApiKey, setRole } from "../../lib/node/data/accounts.ts";
import { bearer, randomIp, signUp } from "../helpers/auth.ts";
import type { Session, SignedUp } from "../helpers/auth.ts";
import { expectError, startStack } from "../helpers/stack.ts";
import type { Stack } from "../helpers/stack.ts";

const ORIGIN = "https://app.example.com";
let stack: Stack;
const GRACE_SECONDS = 2;

beforeAll(async () => {
  // A short grace for a replaced refresh token, so that the test sees both sides of it.
  stack = await startStack({
    corsOrigins: `${ORIGIN}, http://localhost:5173`,
    vars: { auth: { AUTH_REFRESH_REUSE_GRACE_SECONDS: GRACE_SECONDS } },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", "x-forwarded-for": randomIp(), ...headers },
  body: JSON.stringify(body),
});

describe("the auth function", () => {
  const email = `ada-${crypto.randomUUID().slice(0, 8)}@Example.com`;
  const password = "correct horse battery staple";
  let session: Session;

  it("says at its root what it offers", async () => {
    const r = await stack.call("/auth");
    expect(r.status).toBe(200);
    expect(Object.keys((r.body as unknown as { endpoints: Record<string, string> }).endpoints)).toEqual([
      "POST /signup",
      "POST /login",
      "POST /refresh",
      "POST /logout",
      "GET /me",
    ]);
  });

  it("signs up: 201 with an access token, a refresh token and the account, never cached", async () => {
    const r = await stack.call("/auth/signup", json({ email, password }));
    expect(r.status).toBe(201);
    expect(r.res.headers.get("cache-control")).toBe("no-store");
    expect(r.body).toMatchObject({
      tokenType: "Bearer",
      accessToken: expect.stringMatching(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/),
      expiresIn: 900,
      refreshToken: expect.stringMatching(/^[\w-]{43}$/),
      user: { email: email.toLowerCase(), role: "user", id: expect.any(String) },
    });
    session = r.body as unknown as Session;
  });

  it("stores a scrypt hash, never the password, and only a hash of the refresh token", async () => {
    const [row] = await stack.sql`select password_hash from auth_users where email = ${email.toLowerCase()}`;
    expect(row?.password_hash).toMatch(/^\$scrypt\$ln=14,r=8,p=5\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(row?.password_hash).not.toContain(password);
    const tokens = await stack.sql`select token_hash from auth_refresh_tokens where user_id = ${session.user.id}`;
    expect(tokens).toHaveLength(1);
    expect(tokens[0]?.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(tokens[0]?.token_hash).not.toBe(session.refreshToken);
  });

  it("refuses a taken email (409) and bad input (400 with issues)", async () => {
    expectError(await stack.call("/auth/signup", json({ email: email.toUpperCase(), password })), 409, "email_taken");
    const bad = await stack.call("/auth/signup", json({ email: "not-an-email", password: "short" }));
    expectError(bad, 400, "invalid_input");
    expect((bad.body as unknown as { error: { issues: { path: string }[] } }).error.issues.map((i) => i.path).sort()).toEqual([
      "email",
      "password",
    ]);
  });

  it("logs in with the right password; a wrong password and an unknown account get the same 401", async () => {
    const ok = await stack.call("/auth/login", json({ email, password }));
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ user: { id: session.user.id } });
    const wrong = await stack.call("/auth/login", json({ email, password: "wrong password!" }));
    const unknown = await stack.call("/auth/login", json({ email: "nobody-here@example.com", password }));
    for (const r of [wrong, unknown]) {
      expectError(r, 401, "invalid_credentials");
      expect(r.res.headers.get("www-authenticate")).toMatch(/^Bearer realm="workyard"/);
    }
    expect(wrong.body).toEqual({ error: { ...(unknown.body as unknown as { error: object }).error, requestId: wrong.requestId } });
  });

  it("answers /me for a valid access token, 401 with WWW-Authenticate without one or with a bad one", async () => {
    const me = await stack.call("/auth/me", { headers: bearer(session.accessToken) });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: session.user.id, email: email.toLowerCase(), role: "user" });
    const none = await stack.call("/auth/me");
    expectError(none, 401, "unauthorized");
    expect(none.res.headers.get("www-authenticate")).toBe('Bearer realm="workyard"');
    const bad = await stack.call("/auth/me", { headers: bearer("not.a.jwt") });
    expectError(bad, 401, "invalid_token");
    expect(bad.res.headers.get("www-authenticate")).toMatch(/^Bearer realm="workyard", error="invalid_token", error_description=".+"$/);
    expectError(await stack.call("/auth/me", { headers: { authorization: `Basic ${btoa("a:b")}` } }), 401, "invalid_request");
  });

  it("rotates refresh tokens; a replaced token used again ends the whole session, past a short grace for the same client", async () => {
    const first = await stack.call("/auth/refresh", json({ refreshToken: session.refreshToken }));
    expect(first.status).toBe(200);
    const rotated = first.body as unknown as Session;
    expect(rotated.refreshToken).not.toBe(session.refreshToken);
    expect((await stack.call("/auth/me", { headers: bearer(rotated.accessToken) })).status).toBe(200);

    // At once again (two tabs that both found the access token expired): a new pair in the same session, once.
    const racing = await stack.call("/auth/refresh", json({ refreshToken: session.refreshToken }));
    expect(racing.status).toBe(200);
    expect((racing.body as unknown as Session).refreshToken).not.toBe(rotated.refreshToken);
    // A third use, still within the grace: a copy. It and every token that replaced it stop working.
    expectError(await stack.call("/auth/refresh", json({ refreshToken: session.refreshToken })), 401, "refresh_token_reused");
    expectError(await stack.call("/auth/refresh", json({ refreshToken: rotated.refreshToken })), 401, "invalid_token");
    expectError(
      await stack.call("/auth/refresh", json({ refreshToken: (racing.body as unknown as Session).refreshToken })),
      401,
      "invalid_token",
    );
    const family = await stack.sql`
      select revoked_reason from auth_refresh_tokens
      where family = (select family from auth_refresh_tokens where user_id = ${session.user.id} order by created_at limit 1)
      order by created_at`;
    expect(family.map((t) => t.revoked_reason)).toEqual(["rotated", "reuse", "reuse"]);

    // Past the grace, a replaced token's first use again is a copy too.
    const other = (await stack.call("/auth/login", json({ email, password }))).body as unknown as Session;
    expect((await stack.call("/auth/refresh", json({ refreshToken: other.refreshToken }))).status).toBe(200);
    await new Promise((r) => setTimeout(r, GRACE_SECONDS * 1000 + 200));
    expectError(await stack.call("/auth/refresh", json({ refreshToken: other.refreshToken })), 401, "refresh_token_reused");
    expectError(await stack.call("/auth/refresh", json({ refreshToken: "x".repeat(43) })), 401, "invalid_token");
  });

  it("logs out one session, or every session of the account", async () => {
    const a = (await stack.call("/auth/login", json({ email, password }))).body as unknown as Session;
    const b = (await stack.call("/auth/login", json({ email, password }))).body as unknown as Session;
    expect((await stack.call("/auth/logout", json({ refreshToken: a.refreshToken }))).status).toBe(204);
    expectError(await stack.call("/auth/refresh", json({ refreshToken: a.refreshToken })), 401, "invalid_token");
    const stillB = await stack.call("/auth/refresh", json({ refreshToken: b.refreshToken }));
    const replacedAt = Date.now();
    expect(stillB.status).toBe(200);
    const b2 = stillB.body as unknown as Session;
    expect((await stack.call("/auth/logout", json({ refreshToken: b2.refreshToken, everywhere: true }))).status).toBe(204);
    expectError(await stack.call("/auth/refresh", json({ refreshToken: b2.refreshToken })), 401, "invalid_token");
    // The token b2 replaced, within the grace: the session has ended, so no new pair (and no alarm: a late tab).
    expectError(await stack.call("/auth/refresh", json({ refreshToken: b.refreshToken })), 401, "invalid_token");
    expect(Date.now() - replacedAt).toBeLessThan(GRACE_SECONDS * 1000);
    const active =
      await stack.sql`select count(*)::int as n from auth_refresh_tokens where user_id = ${session.user.id} and revoked_at is null`;
    expect(active[0]?.n).toBe(0);
    expect((await stack.call("/auth/logout", json({ refreshToken: b2.refreshToken }))).status).toBe(204); // twice is fine
  });
});

describe("login rate limits", () => {
  it("per account: after 5 attempts in 15 minutes, 429 even with the right password and from another IP", async () => {
    const user = await signUp(stack.sup.url);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await stack.call("/auth/login", json({ email: user.email, password: `guess-${i}-wrong` }))).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const limited = await stack.call("/auth/login", json({ email: user.email.toUpperCase(), password: user.password }));
    expectError(limited, 429, "too_many_requests");
    expect(Number(limited.res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(limited.res.headers.get("ratelimit-remaining")).toBe("0");
    // Other accounts are not affected.
    const other = await signUp(stack.sup.url);
    expect((await stack.call("/auth/login", json({ email: other.email, password: other.password }))).status).toBe(200);
  });

  it("per client IP: after 30 attempts in 15 minutes, whatever they were", async () => {
    const ip = randomIp();
    const attempt = () => stack.call("/auth/login", json({ email: 42 }, { "x-forwarded-for": ip }));
    const first = await attempt();
    expectError(first, 400, "invalid_input");
    expect(first.res.headers.get("ratelimit-limit")).toBe("30");
    let last = first;
    for (let i = 1; i <= 30 && last.status !== 429; i++) last = await attempt();
    expectError(last, 429, "too_many_requests");
    expect((await stack.call("/auth/login", json({ email: 42 }))).status).toBe(400); // another IP still gets in
  });
});

describe("links: who may write", () => {
  let owner: SignedUp;
  let other: SignedUp;
  const create = (code: string, headers: Record<string, string>) =>
    stack.call("/links", json({ url: `https://example.com/${code}`, code }, headers));

  beforeAll(async () => {
    owner = await signUp(stack.sup.url);
    other = await signUp(stack.sup.url);
  });

  it("creating needs a signed-in user (401 with WWW-Authenticate); resolving does not", async () => {
    const code = `a${Date.now().toString(36)}`;
    const anonymous = await create(code, {});
    expectError(anonymous, 401, "unauthorized");
    expect(anonymous.res.headers.get("www-authenticate")).toBe('Bearer realm="workyard"');
    expect((await stack.sql`select count(*)::int as n from links where code = ${code}`)[0]?.n).toBe(0);

    expect((await create(code, bearer(owner.accessToken))).status).toBe(201);
    const [row] = await stack.sql`select owner from links where code = ${code}`;
    expect(row?.owner).toBe(`user:${owner.user.id}`);
    const redirect = await stack.call(`/links/${code}`);
    expect(redirect.status).toBe(302);
  });

  it("deleting: 401 anonymous, 403 for another user, 204 for the owner", async () => {
    const code = `d${Date.now().toString(36)}`;
    await create(code, bearer(owner.accessToken));
    expectError(await stack.call(`/links/${code}`, { method: "DELETE" }), 401, "unauthorized");
    const forbidden = await stack.call(`/links/${code}`, { method: "DELETE", headers: bearer(other.accessToken) });
    expectError(forbidden, 403, "forbidden");
    expect(forbidden.res.headers.get("www-authenticate")).toMatch(/error="insufficient_scope"/);
    expect((await stack.call(`/links/${code}`)).status).toBe(302);
    expect((await stack.call(`/links/${code}`, { method: "DELETE", headers: bearer(owner.accessToken) })).status).toBe(204);
  });

  it("an admin may delete anyone's link (the role is in tokens issued after it was given)", async () => {
    const code = `m${Date.now().toString(36)}`;
    await create(code, bearer(owner.accessToken));
    await setRole(stack.sql, other.email, "admin");
    expectError(await stack.call(`/links/${code}`, { method: "DELETE", headers: bearer(other.accessToken) }), 403, "forbidden");
    const admin = (await stack.call("/auth/login", json({ email: other.email, password: other.password }))).body as unknown as Session;
    expect(admin.user.role).toBe("admin");
    expect((await stack.call(`/links/${code}`, { method: "DELETE", headers: bearer(admin.accessToken) })).status).toBe(204);
  });
});

describe("API keys", () => {
  const run = promisify(execFile);
  const cli = (args: string[]) =>
    run(process.execPath, ["scripts/apikey.ts", ...args], { env: { ...process.env, DATABASE_URL: stack.databaseUrl } });

  it("npm run apikey makes a key that works for its function, as X-Api-Key or a bearer token", async () => {
    const { stdout } = await cli(["create", "links", "--name", "ci pipeline"]);
    const key = /(wyk_[a-z0-9]{12}_[\w-]{43})/.exec(stdout)?.[1];
    expect(key).toBeDefined();
    const id = key?.slice(4, 16) ?? "";
    const [stored] = await stack.sql`select key_hash, function, name from auth_api_keys where id = ${id}`;
    expect(stored).toMatchObject({ function: "links", name: "ci pipeline", key_hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(stored?.key_hash).not.toContain(key?.slice(17));

    const code = `k${Date.now().toString(36)}`;
    expect((await stack.call("/links", json({ url: "https://example.com/k", code }, { "x-api-key": key ?? "" }))).status).toBe(201);
    expect((await stack.sql`select owner from links where code = ${code}`)[0]?.owner).toBe(`key:${id}`);
    expect((await stack.call(`/links/${code}`, { method: "DELETE", headers: bearer(key ?? "") })).status).toBe(204);
    expect((await cli(["list"])).stdout).toMatch(new RegExp(`${id}\\s+links\\s+user\\s+active`));

    await cli(["revoke", id]);
    const revoked = await stack.call("/links", json({ url: "https://example.com/k2" }, { "x-api-key": key ?? "" }));
    expectError(revoked, 401, "invalid_token");
  });

  it("a key for another function is 403; a wrong or malformed key is 401; API keys are refused where not accepted", async () => {
    const forAuth = await createApiKey(stack.sql, "auth", "wrong function");
    expectError(await stack.call("/links", json({ url: "https://example.com/x" }, { "x-api-key": forAuth.key })), 403, "forbidden");
    const good = await createApiKey(stack.sql, "links", "test");
    const tampered = `${good.key.slice(0, -4)}AAAA`;
    expectError(await stack.call("/links", json({ url: "https://example.com/x" }, { "x-api-key": tampered })), 401, "invalid_token");
    expectError(await stack.call("/links", json({ url: "https://example.com/x" }, { "x-api-key": "wyk_nope" })), 401, "invalid_token");
    expectError(await stack.call("/auth/me", { headers: bearer(good.key) }), 401, "invalid_token"); // /me takes users only
    const both = await stack.call("/links", json({ url: "https://example.com/x" }, { "x-api-key": good.key, ...bearer("x") }));
    expectError(both, 401, "invalid_request");
    await revokeApiKey(stack.sql, good.id);
  });
});

describe("CORS, secure headers, HTML", () => {
  it("answers a preflight from an allowed origin, and not from another", async () => {
    const preflight = (origin: string) =>
      stack.call("/links", {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
      });
    const ok = await preflight(ORIGIN);
    expect(ok.status).toBe(204);
    expect(ok.res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(ok.res.headers.get("access-control-allow-headers")).toMatch(/Authorization/);
    expect(ok.res.headers.get("access-control-allow-methods")).toMatch(/DELETE/);
    const evil = await preflight("https://evil.example");
    expect(evil.res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("sets Access-Control-Allow-Origin on answers and errors for allowed origins only, with Vary: Origin", async () => {
    const allowed = await stack.call("/links", {
      ...json({ url: "https://example.com" }),
      headers: { "content-type": "application/json", origin: ORIGIN },
    });
    expect(allowed.status).toBe(401);
    expect(allowed.res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(allowed.res.headers.get("access-control-expose-headers")).toMatch(/WWW-Authenticate/);
    const hello = await stack.call("/hello", { headers: { origin: "http://localhost:5173" } });
    expect(hello.res.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(hello.res.headers.get("vary")).toMatch(/Origin/);
    expect(
      (await stack.call("/hello", { headers: { origin: "https://evil.example" } })).res.headers.get("access-control-allow-origin"),
    ).toBeNull();
  });

  it("answers a request without Origin with Vary: Origin and no other CORS header", async () => {
    const { res } = await stack.call("/hello");
    expect(res.headers.get("vary")).toMatch(/Origin/);
    expect([...res.headers.keys()].filter((name) => name.startsWith("access-control-"))).toEqual([]);
  });

  it("sends strict secure headers and no X-Powered-By; no HSTS over plain HTTP", async () => {
    for (const path of ["/hello", "/links/nosuch", "/auth/me"]) {
      const { res } = await stack.call(path);
      expect(res.headers.get("x-powered-by")).toBeNull();
      expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'/);
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      expect(res.headers.get("cross-origin-resource-policy")).toBe("same-origin");
      expect(res.headers.get("strict-transport-security")).toBeNull();
      // Headers for HTML documents and old browsers are not sent with JSON API answers.
      expect(res.headers.get("x-xss-protection")).toBeNull();
    }
  });

  it("escapes HTML by construction", async () => {
    const r = await stack.call(`/hello/card/${encodeURIComponent('<script>alert("x")</script>&')}`);
    expect(r.status).toBe(200);
    expect(r.res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(r.text).toContain("<h1>Hello, &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;!</h1>");
    expect(r.text).not.toContain("<script>");
  });
});
