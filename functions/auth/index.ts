/**
 * auth: accounts and sessions, on PostgreSQL, with Redis for the login rate limits.
 *   POST /signup   {email, password}             create an account (201) and sign in; a taken email is 409
 *   POST /login    {email, password}             sign in (200); wrong email or password is 401; rate limited
 *                                                per client IP and per account (429)
 *   POST /refresh  {refreshToken}                a new access token and a new refresh token (the old one stops
 *                                                working); presenting a replaced token again ends the session,
 *                                                unless within AUTH_REFRESH_REUSE_GRACE_SECONDS of its replacement
 *                                                (a client racing itself: it gets a new pair too)
 *   POST /logout   {refreshToken, everywhere?}   end the session (or every session of the account): 204
 *   GET  /me                                     the signed-in account (Authorization: Bearer <access token>)
 *   cron "17 * * * *"                            delete refresh tokens that expired more than a day ago
 * Token answers: {tokenType, accessToken, expiresIn, refreshToken, refreshExpiresIn, user}, never cached.
 * Passwords: scrypt (lib/sdk/password.ts). Access tokens: HS256 JWTs (lib/sdk/jwt.ts).
 */
import type { Context } from "hono";
import { randomToken, sha256Hex } from "#workyard/api-keys";
import { createApp } from "#workyard/app";
import { requireAuth } from "#workyard/auth";
import { database, db, withDatabase } from "#workyard/db";
import type { Sql } from "#workyard/db";
import type { TransactionSql } from "postgres";
import { defineEnv } from "#workyard/env";
import { ApiError } from "#workyard/errors";
import { jwtEnv, signAccessToken } from "#workyard/jwt";
import { dummyHash, hashPassword, MAX_PASSWORD_BYTES, needsRehash, verifyPassword } from "#workyard/password";
import { rateLimit } from "#workyard/rate-limit";
import { withCrons } from "#workyard/scheduled";
import { afterInput, createRoute, errorResponses, jsonBody, jsonResponse, security, z } from "#workyard/openapi";

const env = defineEnv(
  z.object({
    AUTH_REFRESH_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .max(400 * 24 * 3600)
      .default(30 * 24 * 3600),
    LOGIN_PER_ACCOUNT: z.coerce.number().int().positive().default(5),
    LOGIN_PER_IP: z.coerce.number().int().positive().default(30),
    SIGNUP_PER_IP: z.coerce.number().int().positive().default(20),
    AUTH_REFRESH_REUSE_GRACE_SECONDS: z.coerce.number().int().min(0).max(60).default(10),
  }),
);

interface User {
  id: string;
  email: string;
  password_hash: string;
  role: string;
  created_at: Date;
}

const email = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email("an email address"))
  .transform((e) => e.toLowerCase());
const password = z
  .string()
  .min(10, "at least 10 characters")
  .refine((p) => new TextEncoder().encode(p).length <= MAX_PASSWORD_BYTES, `at most ${MAX_PASSWORD_BYTES} bytes`);
const credentials = z.object({ email, password });
// At login, any string up to the limits: a password that would not be accepted today just fails to match.
const loginSchema = z.object({ email: z.string().max(254), password: z.string().max(MAX_PASSWORD_BYTES) });
const refreshSchema = z.object({ refreshToken: z.string().min(1).max(128) });
const logoutSchema = refreshSchema.extend({ everywhere: z.boolean().default(false) });

const userJson = (u: Pick<User, "id" | "email" | "role" | "created_at">) => ({
  id: u.id,
  email: u.email,
  role: u.role,
  createdAt: u.created_at.toISOString(),
});

const sha256 = sha256Hex;
const newRefreshToken = () => randomToken(32);

/** A client or a transaction of one (postgres.js). */
type Queryable = Sql | TransactionSql;

/** Stores a new refresh token in `family`; returns it (only its hash is kept). */
async function storeRefreshToken(c: Context, sql: Queryable, userId: string, family: string): Promise<string> {
  const refreshToken = newRefreshToken();
  await sql`insert into auth_refresh_tokens (token_hash, user_id, family, expires_at)
            values (${await sha256(refreshToken)}, ${userId}, ${family}, now() + ${env(c).AUTH_REFRESH_TTL_SECONDS} * interval '1 second')`;
  return refreshToken;
}

/** Stores a new refresh token in `family` and answers both tokens. */
async function issueTokens<S extends 200 | 201 = 200>(
  c: Context,
  sql: Queryable,
  user: Pick<User, "id" | "email" | "role" | "created_at">,
  family: string,
  status: S = 200 as S,
) {
  return tokensAnswer(c, user, family, await storeRefreshToken(c, sql, user.id, family), status);
}

/** Both tokens as the answer: a new access token for `user` in `family`, and the refresh token just stored. */
async function tokensAnswer<S extends 200 | 201 = 200>(
  c: Context,
  user: Pick<User, "id" | "email" | "role" | "created_at">,
  family: string,
  refreshToken: string,
  status: S = 200 as S,
) {
  const refreshTtl = env(c).AUTH_REFRESH_TTL_SECONDS;
  const settings = jwtEnv(c);
  const accessToken = await signAccessToken(settings, { sub: user.id, role: user.role, sid: family });
  c.header("cache-control", "no-store");
  return c.json(
    {
      tokenType: "Bearer" as const,
      accessToken,
      expiresIn: settings.AUTH_ACCESS_TTL_SECONDS,
      refreshToken,
      refreshExpiresIn: refreshTtl,
      user: userJson(user),
    },
    status,
  );
}

const invalidCredentials = () =>
  new ApiError(401, "The email or password is wrong", {
    code: "invalid_credentials",
    headers: { "www-authenticate": 'Bearer realm="workyard"' },
  });

const invalidRefresh = (message: string, code = "invalid_token") =>
  new ApiError(401, message, { code, headers: { "www-authenticate": `Bearer realm="workyard", error="invalid_token"` } });

/** The per-account limit's key: a hash of the normalized email, so no address is written into Redis. */
async function accountKey(c: Context): Promise<string> {
  const body = await c.req.json<{ email: string }>();
  return sha256(body.email.trim().toLowerCase());
}

const app = createApp({
  api: {
    title: "auth",
    description:
      "Accounts and sessions: sign up, log in, refresh and log out; an access token (a JWT, 15 minutes) for the other functions.",
  },
});
app.use(database());

const exampleUser = {
  id: "9b2f3c1e-4a57-4a61-9a51-3f1e0c7d2b10",
  email: "ada@example.com",
  role: "user",
  createdAt: "2026-12-05T17:00:00.000Z",
};
const userSchema = z
  .object({ id: z.string(), email: z.string(), role: z.string().openapi({ example: "user" }), createdAt: z.string() })
  .openapi("User");
const tokensSchema = z
  .object({
    tokenType: z.literal("Bearer"),
    accessToken: z.string().openapi({ description: "Send as Authorization: Bearer <accessToken>" }),
    expiresIn: z.number().int().openapi({ description: "Seconds the access token is valid" }),
    refreshToken: z.string().openapi({ description: "For POST /refresh and /logout; works once" }),
    refreshExpiresIn: z.number().int(),
    user: userSchema,
  })
  .openapi("Tokens");
const exampleTokens = {
  tokenType: "Bearer" as const,
  accessToken: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5YjJmM2MxZSJ9.c2lnbmF0dXJl",
  expiresIn: 900,
  refreshToken: "q3Jz1o8wQ2s9v6Yl0dXN2b3J0aGVyZWZyZXNodG9rZW4",
  refreshExpiresIn: 2592000,
  user: exampleUser,
};
const exampleCredentials = { email: "ada@example.com", password: "correct horse battery" };
const tooMany = { description: "Too many attempts from this client (or for this account); see Retry-After" };
const limitUnavailable = {
  description: "Rate limiting cannot be checked (Redis is down): refused, not let through",
  code: "rate_limit_unavailable",
};

// What this function offers, for a person or a client finding its way.
app.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["auth"],
    summary: "What this function offers",
    responses: {
      200: jsonResponse(z.object({ service: z.literal("auth"), endpoints: z.record(z.string(), z.string()) }), "The routes, in words", {
        service: "auth",
        endpoints: { "POST /signup": "{ email, password } → 201 with an access token and a refresh token" },
      }),
    },
  }),
  (c) =>
    c.json(
      {
        service: "auth" as const,
        endpoints: {
          "POST /signup": "{ email, password } → 201 with an access token and a refresh token",
          "POST /login": "{ email, password } → 200 with tokens (rate limited per account and per IP)",
          "POST /refresh": "{ refreshToken } → new tokens; the old refresh token stops working",
          "POST /logout": "{ refreshToken, everywhere? } → 204",
          "GET /me": "the signed-in user (Authorization: Bearer <access token>)",
        },
      },
      200,
    ),
);

app.openapi(
  createRoute({
    method: "post",
    path: "/signup",
    tags: ["auth"],
    summary: "Create an account and sign in",
    middleware: [rateLimit({ limit: (c) => env(c).SIGNUP_PER_IP, window: "1 h", prefix: "auth:signup:ip", failMode: "closed" })],
    request: { body: jsonBody(credentials, exampleCredentials) },
    responses: {
      201: jsonResponse(tokensSchema, "The account is made; its tokens", exampleTokens),
      ...errorResponses({
        409: {
          description: "An account with this email exists",
          code: "email_taken",
          message: "An account with this email exists; log in instead",
        },
        429: tooMany,
        503: limitUnavailable,
      }),
    },
  }),
  async (c) => {
    const { email, password } = c.req.valid("json");
    const hash = await hashPassword(password);
    const sql = db(c);
    const [user] = await sql<User[]>`
      insert into auth_users (email, password_hash) values (${email}, ${hash})
      on conflict (email) do nothing
      returning id, email, role, created_at`;
    if (!user) throw new ApiError(409, "An account with this email exists; log in instead", { code: "email_taken" });
    return issueTokens(c, sql, user, crypto.randomUUID(), 201);
  },
);

app.openapi(
  createRoute({
    method: "post",
    path: "/login",
    tags: ["auth"],
    summary: "Sign in",
    // Per client IP first (garbage counts too), then per account: both fail closed, since an outage of Redis
    // must not turn off brute-force protection.
    middleware: [
      rateLimit({ limit: (c) => env(c).LOGIN_PER_IP, window: "15 m", prefix: "auth:login:ip", failMode: "closed" }),
      afterInput(
        rateLimit({
          limit: (c) => env(c).LOGIN_PER_ACCOUNT,
          window: "15 m",
          prefix: "auth:login:account",
          key: accountKey,
          failMode: "closed",
        }),
      ),
    ],
    request: { body: jsonBody(loginSchema, exampleCredentials) },
    responses: {
      200: jsonResponse(tokensSchema, "Signed in; the tokens", exampleTokens),
      ...errorResponses({
        401: { description: "The email or password is wrong", code: "invalid_credentials", message: "The email or password is wrong" },
        429: tooMany,
        503: limitUnavailable,
      }),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const sql = db(c);
    const [user] = await sql<
      User[]
    >`select id, email, password_hash, role, created_at from auth_users where email = ${body.email.trim().toLowerCase()}`;
    // An unknown account costs one hash too, so the answer's timing does not tell which accounts exist.
    const ok = await verifyPassword(body.password, user?.password_hash ?? (await dummyHash()));
    if (!user || !ok) throw invalidCredentials();
    if (needsRehash(user.password_hash)) {
      await sql`update auth_users set password_hash = ${await hashPassword(body.password)} where id = ${user.id}`;
    }
    return issueTokens(c, sql, user, crypto.randomUUID());
  },
);

app.openapi(
  createRoute({
    method: "post",
    path: "/refresh",
    tags: ["auth"],
    summary: "New tokens for a refresh token (which stops working)",
    request: { body: jsonBody(refreshSchema, { refreshToken: exampleTokens.refreshToken }) },
    responses: {
      200: jsonResponse(tokensSchema, "A new access token and a new refresh token", exampleTokens),
      ...errorResponses({
        401: {
          description: "Unknown, expired or revoked (invalid_token), or already used: the session is ended (refresh_token_reused)",
          code: "invalid_token",
          message: "The refresh token is not valid (unknown, expired or revoked). Log in again",
        },
      }),
    },
  }),
  async (c) => {
    const hash = await sha256(c.req.valid("json").refreshToken);
    const grace = env(c).AUTH_REFRESH_REUSE_GRACE_SECONDS;
    // One transaction, holding the account's lock (sessionLock), so that a logout cannot fall between a check and
    // the new token it allows.
    type Outcome = { user: User; family: string; refreshToken: string } | { reused: string } | null;
    const outcome = await db(c).begin(async (sql): Promise<Outcome> => {
      const [token] = await sql<{ user_id: string }[]>`select user_id from auth_refresh_tokens where token_hash = ${hash}`;
      if (!token) return null;
      await sessionLock(sql, token.user_id);
      // Rotation: the token is spent in the same statement that checks it, so two uses cannot both succeed.
      const [spent] = await sql<{ user_id: string; family: string }[]>`
        update auth_refresh_tokens set revoked_at = now(), revoked_reason = 'rotated'
        where token_hash = ${hash} and revoked_at is null and expires_at > now()
        returning user_id, family`;
      const renewed = spent ?? (await graceRenewal(sql, hash, grace));
      if (renewed) {
        const [user] = await sql<User[]>`select id, email, role, created_at from auth_users where id = ${renewed.user_id}`;
        if (!user) throw invalidRefresh("The account no longer exists");
        return { user, family: renewed.family, refreshToken: await storeRefreshToken(c, sql, user.id, renewed.family) };
      }
      const [old] = await sql<{ family: string; revoked_reason: string | null; family_ended: boolean }[]>`
        select family, revoked_reason,
               exists (select 1 from auth_refresh_tokens f where f.family = t.family and f.revoked_reason in ('logout', 'reuse')) as family_ended
        from auth_refresh_tokens t where token_hash = ${hash}`;
      // A replaced token came back in a session still open: someone holds a copy. End the session, for both of them.
      // (In a session that has ended, it is only a late tab: no alarm.)
      if (old?.revoked_reason === "rotated" && !old.family_ended) {
        await sql`update auth_refresh_tokens set revoked_at = now(), revoked_reason = 'reuse' where family = ${old.family} and revoked_at is null`;
        return { reused: old.family };
      }
      return null;
    });
    if (outcome && "user" in outcome) return tokensAnswer(c, outcome.user, outcome.family, outcome.refreshToken);
    if (outcome) {
      console.warn(`auth: a replaced refresh token was used again; session ${outcome.reused} revoked`);
      throw invalidRefresh("This refresh token was already used; the session has been ended. Log in again", "refresh_token_reused");
    }
    throw invalidRefresh("The refresh token is not valid (unknown, expired or revoked). Log in again");
  },
);

/**
 * Refreshes and logouts of one account, one at a time (a transaction-scoped advisory lock: released at commit, so
 * it holds behind PgBouncer's transaction pooling too).
 */
async function sessionLock(sql: Queryable, userId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`auth:${userId}`}))`;
}

/**
 * The grace for a client racing itself (two tabs that both found the access token expired): a token replaced less
 * than `grace` seconds ago, in a session still open, is renewed once more. Once only: the renewal moves the token's
 * replacement time out of the window, so a third use (or a copy used later) is a reuse.
 */
async function graceRenewal(sql: Queryable, hash: string, grace: number): Promise<{ user_id: string; family: string } | undefined> {
  if (grace === 0) return undefined;
  const [renewed] = await sql<{ user_id: string; family: string }[]>`
    update auth_refresh_tokens t set revoked_at = revoked_at - ${grace + 1} * interval '1 second'
    where token_hash = ${hash} and revoked_reason = 'rotated' and revoked_at > now() - ${grace} * interval '1 second'
      and not exists (select 1 from auth_refresh_tokens f where f.family = t.family and f.revoked_reason in ('logout', 'reuse'))
    returning user_id, family`;
  return renewed;
}

app.openapi(
  createRoute({
    method: "post",
    path: "/logout",
    tags: ["auth"],
    summary: "End the session (or every session of the account)",
    request: { body: jsonBody(logoutSchema, { refreshToken: exampleTokens.refreshToken, everywhere: false }) },
    responses: { 204: { description: "Logged out; the same answer for a token that was not known" } },
  }),
  async (c) => {
    const { refreshToken, everywhere } = c.req.valid("json");
    const hash = await sha256(refreshToken);
    await db(c).begin(async (sql) => {
      const [token] = await sql<
        { user_id: string; family: string }[]
      >`select user_id, family from auth_refresh_tokens where token_hash = ${hash}`;
      if (!token) return;
      // After any refresh of the account in flight (sessionLock): none can hand out a token once the session ended.
      await sessionLock(sql, token.user_id);
      if (everywhere) {
        await sql`update auth_refresh_tokens set revoked_at = now(), revoked_reason = 'logout' where revoked_at is null and user_id = ${token.user_id}`;
      } else {
        // The presented token too when it was already replaced: the session is marked ended either way.
        await sql`update auth_refresh_tokens set revoked_at = now(), revoked_reason = 'logout'
                  where family = ${token.family} and (revoked_at is null or token_hash = ${hash})`;
      }
    });
    // The same answer whether or not the token was known: logging out twice is fine.
    return c.body(null, 204);
  },
);

app.openapi(
  createRoute({
    method: "get",
    path: "/me",
    tags: ["auth"],
    summary: "The signed-in account",
    security: security.user,
    middleware: [requireAuth()],
    responses: {
      200: jsonResponse(userSchema, "The account", exampleUser),
      ...errorResponses({ 404: { description: "The account no longer exists", message: "The account no longer exists" } }),
    },
  }),
  async (c) => {
    const [user] = await db(c)<User[]>`select id, email, role, created_at from auth_users where id = ${c.get("principal").id}`;
    if (!user) throw new ApiError(404, "The account no longer exists");
    return c.json(userJson(user), 200);
  },
);

async function purgeExpired(_event: ScheduledController, bindings: unknown) {
  const deleted = await withDatabase(
    bindings as Record<string, unknown>,
    (sql) => sql`delete from auth_refresh_tokens where expires_at < now() - interval '1 day'`,
  );
  console.log(`auth: deleted ${deleted.count} expired refresh token(s)`);
}

export default withCrons(app, { "17 * * * *": purgeExpired });
