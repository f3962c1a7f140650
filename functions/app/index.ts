/**
 * app: a front end for links, as a function of its own (served at /app/, or at / on Cloudflare). The page is a React app (src/, built by
 * Vite into dist/ by this function's [build] command) that this function renders on the server and the browser
 * hydrates, so every page and form works without JavaScript too.
 *   GET  /                      my links and the form to shorten one; signed out, the sign-in form
 *   GET  /stats                 clicks per link (with JavaScript, a chart loaded as a chunk of its own)
 *   POST /session               sign in, or sign up (form: email, password, intent=sign-in|sign-up)
 *   POST /session/end           sign out
 *   POST /links                 shorten a link (form: url, code?)
 *   POST /links/:code/delete    delete one of my links
 *   /assets/*                   the built script, styles and chunks ([assets]: fingerprinted, cached for a year)
 * A request that accepts JSON (the page's own script) gets the next page state as JSON; a plain form post gets a 303
 * to the page (with a one-time notice), or, when it failed, the page with the reason and the failure's status.
 * auth and links are reached through service bindings; the tokens stay in HttpOnly cookies (server/session.ts).
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { etag, RETAINED_304_HEADERS } from "hono/etag";
import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { z } from "zod";
import { createApp, renderError } from "#workyard/app";
import { routedPath } from "#workyard/route";
import { defineEnv } from "#workyard/env";
import { errorBody } from "#workyard/errors";
import { App } from "./src/App.tsx";
import { paths } from "./src/state.ts";
import type { Link, Notice, PageState, User, View } from "./src/state.ts";
import { call, CallError } from "./server/calls.ts";
import type { Service } from "./server/calls.ts";
import { accessToken, cookieOptions, endSession, forgetTokens, keepTokens, servedAt } from "./server/session.ts";
import type { Tokens } from "./server/session.ts";

interface Bindings {
  ASSETS: Service;
  AUTH: Service;
  LINKS: Service;
}

/** The page's policy: its own scripts, styles and chunks, nothing inline, no framing, forms only to itself. */
const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
const NOTICE_COOKIE = "wy_notice";
const MAX_LINKS_SHOWN = 100;

const app = createApp<{ Bindings: Bindings }>();

/**
 * Every unsafe method only from this site's own pages: the browser's Sec-Fetch-Site, or (older browsers) an Origin with
 * this Host (the scheme may differ behind a TLS proxy); neither is a 403. (Hono's csrf() checks form posts only.)
 * SameSite cookies are the second line.
 */
app.use(async function sameSite(c, next) {
  if (c.req.method === "GET" || c.req.method === "HEAD") return next();
  const site = c.req.header("sec-fetch-site");
  const origin = c.req.header("origin");
  const fromHere = site
    ? site === "same-origin"
    : origin !== undefined && URL.canParse(origin) && new URL(origin).host === c.req.header("host");
  if (!fromHere) {
    return c.json(errorBody(403, "Only this site's own pages may send this (Sec-Fetch-Site or Origin)", c.get("requestId")), 403);
  }
  return next();
});

const wantsJson = (c: Context) => (c.req.header("accept") ?? "").includes("application/json");

/** The origin people see (Caddy in front terminates TLS and says so). */
function publicOrigin(c: Context): string {
  const url = new URL(c.req.url);
  return `${c.req.header("x-forwarded-proto") === "https" ? "https:" : url.protocol}//${url.host}`;
}

const appEnv = defineEnv(z.object({ LINKS_PUBLIC_URL: z.url().optional() }));

/**
 * Where short links are followed: LINKS_PUBLIC_URL (links on an origin of its own, as on Cloudflare), else /links/ on
 * this origin (workyard serves every function on one).
 */
function shortLinkBase(c: Context): string {
  const configured = appEnv(c).LINKS_PUBLIC_URL;
  return configured ? `${configured.replace(/\/+$/, "")}/` : `${publicOrigin(c)}/links/`;
}

/**
 * The state of `view` for this request's user. `token`: the access token to use (one just issued), null when the
 * user just signed out, undefined to read the cookies.
 */
/** A page with nobody signed in. */
const signedOutState = (c: Context, view: View, notice: Notice | null): PageState => ({
  view,
  user: null,
  links: [],
  notice,
  shortBase: shortLinkBase(c),
});

async function pageState(c: Context, view: View, notice: Notice | null, token?: string | null): Promise<PageState> {
  const signedOut = signedOutState(c, view, notice);
  const access = token === undefined ? await accessToken(c) : token;
  if (!access) return signedOut;
  try {
    const [user, list] = await Promise.all([
      call<User>(c, "AUTH", "/me", { token: access }),
      call<{ links: Link[] }>(c, "LINKS", `/?owner=me&limit=${MAX_LINKS_SHOWN}`, { token: access }),
    ]);
    return { ...signedOut, user: { id: user.id, email: user.email }, links: list.links };
  } catch (err) {
    // A token auth no longer accepts (the account is gone, the secret changed): signed out, and told why.
    if (err instanceof CallError && (err.status === 401 || err.status === 404)) {
      forgetTokens(c);
      return { ...signedOut, notice: { kind: "error", text: "Your session has ended: sign in again." } };
    }
    throw err;
  }
}

/** The template Vite built (dist/index.html), read once per isolate through the assets binding. */
let template: Promise<string> | undefined;

function pageTemplate(c: Context<{ Bindings: Bindings }>): Promise<string> {
  template ??= c.env.ASSETS.fetch(new Request("http://assets/")).then(async (response) => {
    if (!response.ok) throw new Error(`The page template (dist/index.html) answered ${response.status}: was the front end built?`);
    return response.text();
  });
  template.catch(() => (template = undefined));
  return template;
}

/** The state as the page carries it: JSON that cannot end its <script> element early. */
const embedded = (state: PageState) => JSON.stringify(state).replaceAll("<", "\\u003c");

async function renderPage(
  c: Context<{ Bindings: Bindings }>,
  state: PageState,
  status: 200 | 400 | 401 | 403 | 404 | 409 | 429 | 503 = 200,
) {
  const html = (await pageTemplate(c))
    // Every address in the page is relative to where the function is served (src/state.ts, vite.config.ts).
    .replace("<!--app-base-->", () => `<base href="${servedAt(c)}/" />`)
    .replace("<!--app-html-->", () => renderToString(createElement(App, { state })))
    .replace("<!--app-state-->", () => embedded(state));
  c.set("contentSecurityPolicy", PAGE_CSP);
  // Personal: never kept by a shared cache; the browser revalidates it (the ETag gives a 304 when nothing changed).
  return c.html(html, status, { "cache-control": "private, no-cache", vary: "Accept, Cookie" });
}

/** A notice carried across a redirect for a form posted without JavaScript, shown once. */
function flash(c: Context, notice: Notice): void {
  setCookie(c, NOTICE_COOKIE, JSON.stringify(notice), cookieOptions(c, 60));
}

const noticeSchema = z.object({ kind: z.enum(["error", "ok"]), text: z.string().max(500) });

function takeFlash(c: Context): Notice | null {
  const raw = getCookie(c, NOTICE_COOKIE);
  if (raw === undefined) return null;
  deleteCookie(c, NOTICE_COOKIE, cookieOptions(c, 0));
  try {
    const parsed = noticeSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** A view's address, for a redirect's Location. */
const viewPath = (c: Context, view: View) => `${servedAt(c)}/${view === "stats" ? paths.stats : ""}`;

/** An action that worked: the next state as JSON, or a redirect to the page with the notice. */
async function succeeded(c: Context<{ Bindings: Bindings }>, view: View, notice: Notice, token?: string | null) {
  if (wantsJson(c)) return c.json(await pageState(c, view, notice, token));
  flash(c, notice);
  return c.redirect(viewPath(c, view), 303);
}

/** An action that failed for a reason the user can act on: the page (or its state) with the reason. */
async function failed(c: Context<{ Bindings: Bindings }>, view: View, err: CallError, token?: string | null) {
  const state = await pageState(c, view, { kind: "error", text: err.message }, token);
  const status = pageStatus(err.status);
  return wantsJson(c) ? c.json(state, status) : renderPage(c, state, status);
}

/** A refusal's status as the page answers it: the ones the page knows, else 400. */
const pageStatus = (status: number) => ([400, 401, 403, 404, 409, 429] as const).find((s) => s === status) ?? 400;

/** Runs an action against auth or links; their 4xx answers become the page's notice, anything else a 500. */
async function act(c: Context<{ Bindings: Bindings }>, view: View, work: () => Promise<Response>, token?: string | null) {
  try {
    return await work();
  } catch (err) {
    if (err instanceof CallError && err.status < 500) return failed(c, view, err, token);
    throw err;
  }
}

for (const [path, view] of [
  ["/", "links"],
  ["/stats", "stats"],
] as const) {
  // A 304 keeps its Set-Cookie: a refresh during the request rotated the tokens, and the browser must get the new ones.
  app.get(path, etag({ retainedHeaders: [...RETAINED_304_HEADERS, "set-cookie"] }), async (c) => {
    const state = await pageState(c, view, takeFlash(c));
    if (wantsJson(c)) {
      c.header("cache-control", "private, no-cache");
      c.header("vary", "Accept, Cookie");
      return c.json(state);
    }
    return renderPage(c, state);
  });
}

/** A posted form, read leniently: a body that is not a form (or a broken multipart one) is an empty form. */
async function readForm(c: Context): Promise<Record<string, unknown>> {
  try {
    return await c.req.parseBody();
  } catch {
    return {};
  }
}

const formText = (max: number) => z.preprocess((v) => (typeof v === "string" ? v : ""), z.string().max(max));
const sessionForm = z.object({
  intent: z.enum(["sign-in", "sign-up"]).catch("sign-in"),
  email: formText(254),
  password: formText(1024),
});

app.post(`/${paths.session}`, async (c) => {
  const form = sessionForm.safeParse(await readForm(c));
  if (!form.success) return failed(c, "links", new CallError(400, "The email or the password is too long."), null);
  const { intent, email, password } = form.data;
  return act(
    c,
    "links",
    async () => {
      const tokens = await call<Tokens>(c, "AUTH", intent === "sign-up" ? "/signup" : "/login", {
        method: "POST",
        body: { email, password },
      });
      // A session this browser had before ends at auth, not only in its cookies.
      await endSession(c);
      keepTokens(c, tokens);
      const who = tokens.user?.email ?? email;
      return succeeded(
        c,
        "links",
        { kind: "ok", text: intent === "sign-up" ? `Welcome, ${who}.` : `Signed in as ${who}.` },
        tokens.accessToken,
      );
    },
    null,
  );
});

app.post(`/${paths.signOut}`, async (c) => {
  await endSession(c);
  return succeeded(c, "links", { kind: "ok", text: "Signed out." }, null);
});

const createForm = z.object({
  url: formText(2048),
  code: formText(64).transform((code) => code.trim() || undefined),
});

/** The access token for an action, or the "sign in first" failure. */
async function requireSession(c: Context<{ Bindings: Bindings }>): Promise<string> {
  const token = await accessToken(c);
  if (!token) throw new CallError(401, "Sign in first: your session has ended.");
  return token;
}

app.post(`/${paths.create}`, async (c) =>
  act(c, "links", async () => {
    const token = await requireSession(c);
    const form = createForm.safeParse(await readForm(c));
    if (!form.success) throw new CallError(400, "The address or the code is too long.");
    const link = await call<Link>(c, "LINKS", "/", { method: "POST", body: { url: form.data.url.trim(), code: form.data.code }, token });
    return succeeded(c, "links", { kind: "ok", text: `Created ${shortLinkBase(c)}${link.code}` }, token);
  }),
);

/** links' rule for codes: anything else names no link (and never another path of links). */
const CODE = /^[A-Za-z0-9_-]{3,64}$/;

app.post("/links/:code/delete", async (c) =>
  act(c, "links", async () => {
    const token = await requireSession(c);
    const code = c.req.param("code");
    if (!CODE.test(code)) throw new CallError(404, "No such link.");
    await call(c, "LINKS", `/${encodeURIComponent(code)}`, { method: "DELETE", token });
    return succeeded(c, "links", { kind: "ok", text: `Deleted ${code}.` }, token);
  }),
);

// auth or links failing (down, past their deadline): the page says so, as a 503, without asking them again.
// A refusal that escaped an action (a 429 from /me or /refresh while a page loads) is that status with its reason.
app.onError((err, c) => {
  if (!(err instanceof CallError)) return renderError(err, c);
  const failing = err.status >= 500;
  if (failing) console.error(`app: a call failed with ${err.status}: ${err.message}`);
  const state = signedOutState(c, "links", {
    kind: "error",
    text: failing ? "The service is not answering right now; try again in a moment." : err.message,
  });
  const status = failing ? 503 : pageStatus(err.status);
  if (failing) c.header("retry-after", "5");
  return wantsJson(c) ? c.json(state, status) : renderPage(c, state, status);
});

// A page load at an address the app does not have gets the page with the reason (API clients keep the JSON 404).
// The form addresses answer POST only: another method there is a 405 with Allow, as createApp answers elsewhere.
const FORM_PATHS = /^\/(session|session\/end|links|links\/[^/]+\/delete)$/;

app.notFound(async (c) => {
  const path = routedPath(c.req.raw);
  if (FORM_PATHS.test(path)) {
    c.header("allow", "POST");
    return c.json(errorBody(405, `${c.req.method} is not allowed here; use POST`, c.get("requestId")), 405);
  }
  if (c.req.method !== "GET" || !(c.req.header("accept") ?? "").includes("text/html")) {
    return c.json(errorBody(404, `No route for ${c.req.method} ${path.slice(0, 200)}`, c.get("requestId")), 404);
  }
  return renderPage(c, await pageState(c, "links", { kind: "error", text: "There is no page at this address." }), 404);
});

export default app;
