/**
 * The same function on three runtimes gives the same answers (issue #21): every example function on workerd as
 * `npm start` serves them (through the gateway, under /<name>), under plain `wrangler dev` with the merged config the
 * build leaves (.workyard/wrangler/<name>.json, as `wrangler deploy` would take it), and on Deno (`npm run deno`).
 * One list of scenarios runs against each; every answer is reduced to its status, media type, the headers that
 * matter and its body with what varies by run masked (request ids, tokens, ids, times, the run's own tag), and the
 * three must be equal. All three share one database. Then each runtime's side effects: links' cron moves the click
 * into PostgreSQL, and the new link's queue message reaches the webhook endpoint once, through webhooks. `wrangler
 * deploy --dry-run` is checked for each function.
 */
import { createHash } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { startRedisService } from "../../lib/node/redis/service.ts";
import type { RedisService } from "../../lib/node/redis/service.ts";
import { eventually } from "../helpers/eventually.ts";
import { runScript } from "../helpers/run-script.ts";
import { startServing } from "../helpers/serving.ts";
import { spawnWrangler, wranglerBin } from "../helpers/wrangler.ts";
import { CookieJar } from "../helpers/cookie-jar.ts";
import { startStack } from "../helpers/stack.ts";
import type { Stack } from "../helpers/stack.ts";

const FUNCTIONS = ["hello", "auth", "links", "graphql", "docs", "webhooks"] as const;
type FunctionName = (typeof FUNCTIONS)[number];

/** Where a runtime serves each function: the base URL a function sees itself at. */
interface Runtime {
  name: string;
  base: Record<FunctionName, string>;
  /** Fires a function's cron now, as this runtime allows: npm run trigger on workerd, /__scheduled elsewhere. */
  fireCron(fn: FunctionName, cron: string): Promise<void>;
}

/** What a scenario sends; `tag` is the runtime's own word, so that what one creates never collides with another's. */
interface Scenario {
  name: string;
  fn: FunctionName;
  request: (tag: string, state: State) => { method?: string; path: string; headers?: Record<string, string>; body?: unknown };
  /** Keeps what a later scenario needs (a token). */
  keep?: (body: unknown, state: State) => void;
}

interface State {
  accessToken?: string;
}

const children: ChildProcess[] = [];

/** What the webhooks function delivered (the outside endpoint of WEBHOOK_URL): each POST's headers and JSON body. */
interface Delivery {
  headers: Record<string, string | string[] | undefined>;
  body: { code?: string } & Record<string, unknown>;
}
const deliveries: Delivery[] = [];
/** Each runtime's new link, whose event must reach the endpoint once in all (checked after every runtime ran). */
const createdCodes: string[] = [];
const endpoint = createServer((req, res) => {
  let text = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (text += chunk));
  req.on("end", () => {
    try {
      deliveries.push({ headers: req.headers, body: JSON.parse(text) as Delivery["body"] });
    } catch {
      deliveries.push({ headers: req.headers, body: { unparsed: text } });
    }
    res.end();
  });
});

/** Starts a command and resolves with its base URL once its output matches `ready`. */
const startServer = async (what: string, file: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; ready: RegExp }) =>
  (await startServing(what, file, args, opts, (child) => children.push(child))).url;

const email = (tag: string) => `conformance-${tag}@example.com`;
const PASSWORD = "correct horse battery staple";

const scenarios: Scenario[] = [
  { name: "hello: GET /", fn: "hello", request: () => ({ path: "/" }) },
  { name: "hello: POST /echo", fn: "hello", request: () => ({ method: "POST", path: "/echo", body: { text: "same everywhere" } }) },
  { name: "hello: POST /echo, broken JSON", fn: "hello", request: () => ({ method: "POST", path: "/echo", body: "{" }) },
  { name: "hello: POST /echo, invalid input", fn: "hello", request: () => ({ method: "POST", path: "/echo", body: { text: 42 } }) },
  { name: "hello: an unknown route", fn: "hello", request: () => ({ path: "/no/such/route" }) },
  { name: "hello: a method the route does not take", fn: "hello", request: () => ({ method: "DELETE", path: "/echo" }) },
  { name: "hello: the OpenAPI document", fn: "hello", request: () => ({ path: "/openapi.json" }) },
  { name: "auth: sign-up with nothing", fn: "auth", request: () => ({ method: "POST", path: "/signup", body: {} }) },
  {
    name: "auth: sign-up",
    fn: "auth",
    request: (tag) => ({ method: "POST", path: "/signup", body: { email: email(tag), password: PASSWORD } }),
    keep: (body, state) => (state.accessToken = (body as { accessToken?: string }).accessToken),
  },
  {
    name: "auth: sign-up again with the same address",
    fn: "auth",
    request: (tag) => ({ method: "POST", path: "/signup", body: { email: email(tag), password: PASSWORD } }),
  },
  {
    name: "auth: a wrong password",
    fn: "auth",
    request: (tag) => ({ method: "POST", path: "/login", body: { email: email(tag), password: "not the password" } }),
  },
  {
    name: "auth: who am I",
    fn: "auth",
    request: (_tag, state) => ({ path: "/me", headers: { authorization: `Bearer ${state.accessToken ?? ""}` } }),
  },
  { name: "auth: who am I, no token", fn: "auth", request: () => ({ path: "/me" }) },
  { name: "links: a code nobody made", fn: "links", request: (tag) => ({ path: `/nothing-${tag}` }) },
  {
    name: "links: create without signing in",
    fn: "links",
    request: () => ({ method: "POST", path: "/", body: { url: "https://example.com" } }),
  },
  {
    name: "links: create",
    fn: "links",
    request: (tag, state) => ({
      method: "POST",
      path: "/",
      headers: { authorization: `Bearer ${state.accessToken ?? ""}` },
      body: { url: "https://example.com/conformance", code: `conf-${tag}` },
    }),
  },
  {
    name: "links: create, an address that is not http(s)",
    fn: "links",
    request: (tag, state) => ({
      method: "POST",
      path: "/",
      headers: { authorization: `Bearer ${state.accessToken ?? ""}` },
      body: { url: "javascript:alert(1)", code: `bad-${tag}` },
    }),
  },
  { name: "links: the OpenAPI document", fn: "links", request: () => ({ path: "/openapi.json" }) },
  {
    name: "graphql: a link by code",
    fn: "graphql",
    request: (tag) => ({
      method: "POST",
      path: "/",
      body: { query: "query($code: String!) { link(code: $code) { code url clicks } }", variables: { code: `conf-${tag}` } },
    }),
  },
  {
    name: "graphql: the same as a GET",
    fn: "graphql",
    request: (tag) => ({
      path: `/?${new URLSearchParams({ query: "query($code: String!) { link(code: $code) { code url } }", variables: JSON.stringify({ code: `conf-${tag}` }) })}`,
      headers: { accept: "application/graphql-response+json" },
    }),
  },
  {
    name: "graphql: me, signed in",
    fn: "graphql",
    request: (_tag, state) => ({
      method: "POST",
      path: "/",
      headers: { authorization: `Bearer ${state.accessToken ?? ""}` },
      body: { query: "{ me { email role } }" },
    }),
  },
  {
    name: "graphql: me, not signed in",
    fn: "graphql",
    request: () => ({ method: "POST", path: "/", body: { query: "{ me { email } }" } }),
  },
  {
    name: "graphql: too deep",
    fn: "graphql",
    request: () => ({
      method: "POST",
      path: "/",
      body: { query: `{ me { links { owner { links { owner { links { owner { links { owner { email } } } } } } } } } }` },
    }),
  },
  { name: "graphql: no query", fn: "graphql", request: () => ({ method: "POST", path: "/", body: {} }) },
  {
    name: "graphql: a form post",
    fn: "graphql",
    request: () => ({
      method: "POST",
      path: "/",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "query=%7B%20me%20%7B%20email%20%7D%20%7D",
    }),
  },
  // After the GraphQL reads, so that none of them races the click the redirect counts after its answer (waitUntil).
  { name: "links: the redirect", fn: "links", request: (tag) => ({ path: `/conf-${tag}` }) },
  { name: "docs: the page", fn: "docs", request: () => ({ path: "/" }) },
  { name: "docs: Scalar's script", fn: "docs", request: () => ({ path: "/scalar.js" }) },
  { name: "webhooks: where events go", fn: "webhooks", request: () => ({ path: "/" }) },
  { name: "webhooks: the OpenAPI document", fn: "webhooks", request: () => ({ path: "/openapi.json" }) },
];

/** An answer reduced to what must be the same on every runtime. */
async function reduce(res: Response, tag: string, base: string): Promise<unknown> {
  // A Location on the function itself is relative to where it is served (under the gateway's /<name>, or at "/").
  const prefix = new URL(base).pathname.replace(/\/$/, "");
  let location = res.headers.get("location")?.replaceAll(tag, "<tag>") ?? null;
  if (location && prefix && location.startsWith(`${prefix}/`)) location = location.slice(prefix.length);
  let text = await res.text();
  // A page that names its own address (docs links its scripts under its prefix) is compared as served at "/".
  if (prefix && res.headers.get("content-type")?.startsWith("text/html")) text = text.replaceAll(`${prefix}/`, "/");
  // A large body (Scalar's script) by its hash.
  if (text.length > 100_000) text = `sha256:${createHash("sha256").update(text).digest("hex")}`;
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: compared as text
  }
  const masked = JSON.parse(
    JSON.stringify(body, (key, value: unknown) => {
      if (["requestId", "accessToken", "refreshToken", "id", "createdAt", "expiresAt", "created_at"].includes(key) && value !== null)
        return `<${key}>`;
      // The OpenAPI document's server is where the function is served: the gateway's prefix, or "/" alone.
      if (key === "servers") return "<servers>";
      return typeof value === "string" ? value.replaceAll(tag, "<tag>") : value;
    }) ?? "null",
  ) as unknown;
  return {
    status: res.status,
    type: res.headers.get("content-type")?.split(";")[0] ?? null,
    location,
    allow: res.headers.get("allow"),
    requestId: res.headers.get("x-request-id") ? "present" : "missing",
    body: masked,
  };
}

/** Every scenario against `runtime`, in order: name -> reduced answer. */
async function runAll(runtime: Runtime): Promise<Record<string, unknown>> {
  const tag = `${runtime.name}${Date.now().toString(36)}`;
  const state: State = {};
  const answers: Record<string, unknown> = {};
  for (const s of scenarios) {
    const { method = "GET", path, headers = {}, body } = s.request(tag, state);
    const res = await fetch(`${runtime.base[s.fn]}${path}`, {
      method,
      redirect: "manual",
      headers: {
        // One address per runtime run: rate limits never carry over between runtimes.
        "x-forwarded-for": `198.19.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    const reduced = await reduce(res.clone(), tag, runtime.base[s.fn]);
    if (s.keep) s.keep(await res.json().catch(() => undefined), state);
    answers[s.name] = reduced;
  }
  // A queue message and its side effect: links sent a link.created event for the new link; webhooks consumed it and
  // POSTed it to the endpoint (on Deno, the message is stored by the queue service and delivered by npm start's).
  const code = `conf-${tag}`;
  createdCodes.push(code);
  await eventually(async () => deliveries.some((d) => d.body.code === code), 20_000, 100);
  const events = deliveries.filter((d) => d.body.code === code);
  answers["webhooks: the link's event, delivered to the endpoint"] = events.map((d) => ({
    body: JSON.parse(
      JSON.stringify({
        ...d.body,
        createdAt: typeof d.body.createdAt === "string" && !Number.isNaN(Date.parse(d.body.createdAt)) ? "a time" : d.body.createdAt,
      }).replaceAll(tag, "<tag>"),
    ) as unknown,
    type: d.headers["content-type"],
    id: typeof d.headers["webhook-id"] === "string" && d.headers["webhook-id"].length > 0 ? "present" : "missing",
    timestamp: /^\d{10}$/.test(String(d.headers["webhook-timestamp"])) ? "seconds" : d.headers["webhook-timestamp"],
    attempt: d.headers["webhook-attempt"],
  }));

  // A cron and its side effect in PostgreSQL: links' "* * * * *" moves the redirect's click from Redis into the row,
  // once the click is counted (after the redirect's answer).
  const counted = async () => {
    const res = await fetch(`${runtime.base.links}/conf-${tag}/stats`);
    return ((await res.json()) as { clicks?: number }).clicks === 1;
  };
  for (const until = Date.now() + 5000; !(await counted()) && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
  await runtime.fireCron("links", "* * * * *");
  const [row] = await stack.sql<{ clicks: string }[]>`select clicks::text from links where code = ${`conf-${tag}`}`;
  answers["links: the click, in PostgreSQL after the cron"] = row?.clicks ?? "no row";
  return answers;
}

/** `/__scheduled?cron=...`, as `wrangler dev --test-scheduled` and `npm run deno -- <name> --test-scheduled` serve it. */
async function fireScheduled(base: string, cron: string): Promise<void> {
  const res = await fetch(`${base}/__scheduled?${new URLSearchParams({ cron })}`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${base}/__scheduled answered ${res.status}: ${text}`);
}

let stack: Stack;
let redis: RedisService;
/** functions/app under plain wrangler dev, with auth and links in the same process. */
let appUnderWrangler: string;
const runtimes: Runtime[] = [];

beforeAll(async () => {
  await new Promise<void>((r) => endpoint.listen(0, "127.0.0.1", r));
  const webhookUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/events`;
  stack = await startStack({ apiSurface: true, frontEnd: true, vars: { webhooks: { WEBHOOK_URL: webhookUrl } } });
  const root = stack.project.paths.root;
  runtimes.push({
    name: "workerd",
    base: Object.fromEntries(FUNCTIONS.map((fn) => [fn, `${stack.sup.url}/${fn}`])) as Record<FunctionName, string>,
    async fireCron(fn, cron) {
      const r = await runScript("trigger.ts", [fn, cron], { WORKYARD_ROOT: root });
      if (!/: ok in \d+ ms/.test(r.stdout)) throw new Error(`npm run trigger -- ${fn}: ${r.stdout}${r.stderr}`);
    },
  });
  redis = await startRedisService({ redisUrl: inject("redisUrl") ?? undefined, port: 0, log: () => {} });
  const secrets = { DATABASE_URL: stack.databaseUrl, AUTH_JWT_SECRET: stack.jwtSecret, ...redis.bindings };

  // Plain wrangler dev on each function's merged config, its secrets from an env file (as .dev.vars would give them).
  const envFile = join(root, ".conformance.env");
  await writeFile(
    envFile,
    Object.entries(secrets)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
  );
  // links runs with webhooks in one wrangler dev (its second config): a queue under wrangler dev is that process's
  // own, so the consumer of links' events must be in it; the first config is the one served on the port.
  // The front end runs with the two functions its [[services]] name, as one wrangler dev serves service bindings.
  const together: Record<string, string[]> = { links: ["webhooks"], app: ["auth", "links"] };
  const wrangler = async (fn: string) => {
    const configs = [fn, ...(together[fn] ?? [])].flatMap((name) => ["-c", join(root, ".workyard/wrangler", `${name}.json`)]);
    const args = [
      wranglerBin,
      "dev",
      ...configs,
      "--ip",
      "127.0.0.1",
      // Port 0: Wrangler says the ports it got; ports picked here first could be taken meanwhile (another test run).
      "--port",
      "0",
      "--inspector-port",
      "0",
      // Each its own local state: wrangler dev instances sharing one lock its SQLite files.
      "--persist-to",
      join(root, ".wrangler-state", fn),
      "--test-scheduled",
    ];
    return startServer(`wrangler dev (${fn})`, process.execPath, [...args, "--env-file", envFile, "--log-level", "info"], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      ready: /Ready on (http:\/\/127\.0\.0\.1:\d+)/,
    });
  };
  // npm run deno on each function, from the same project.
  const deno = (fn: FunctionName) =>
    startServer(
      `npm run deno -- ${fn}`,
      process.execPath,
      [join(process.cwd(), "scripts/deno.ts"), fn, "--port", "0", "--test-scheduled"],
      {
        cwd: process.cwd(),
        env: {
          ...process.env,
          WORKYARD_ROOT: root,
          WORKYARD_DENO: join(process.cwd(), "node_modules/.bin/deno"),
          ...secrets,
          REDIS_URL: inject("redisUrl") ?? "",
        },
        ready: /on Deno [\d.]+: (http:\/\/127\.0\.0\.1:\d+)\//,
      },
    );
  const started = async (start: (fn: FunctionName) => Promise<string>) =>
    Object.fromEntries(await Promise.all(FUNCTIONS.map(async (fn) => [fn, await start(fn)] as const))) as Record<FunctionName, string>;
  const [underWrangler, onDeno, app] = await Promise.all([started(wrangler), started(deno), wrangler("app")]);
  appUnderWrangler = app;
  runtimes.push({ name: "wrangler", base: underWrangler, fireCron: (fn, cron) => fireScheduled(underWrangler[fn], cron) });
  runtimes.push({ name: "deno", base: onDeno, fireCron: (fn, cron) => fireScheduled(onDeno[fn], cron) });
}, 240_000);

afterAll(async () => {
  endpoint.close();
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
  await redis?.stop();
  await stack?.stop();
});

describe("one function, three runtimes", () => {
  it("answers every scenario the same on workerd, under wrangler dev and on Deno", async () => {
    // One runtime after the other: a cron moves every pending click, and each runtime's must be moved by its own.
    const all: Record<string, unknown>[] = [];
    for (const runtime of runtimes) all.push(await runAll(runtime));
    const [workerd, ...others] = all;
    // Sanity: the scenarios did what they say on workerd (a broken setup must not pass by failing the same way).
    expect(workerd?.["auth: sign-up"]).toMatchObject({ status: 201 });
    expect(workerd?.["links: create"]).toMatchObject({ status: 201 });
    expect(workerd?.["links: the redirect"]).toMatchObject({ status: 302, location: "https://example.com/conformance" });
    expect(workerd?.["hello: POST /echo, broken JSON"]).toMatchObject({ status: 400 });
    expect(workerd?.["links: the click, in PostgreSQL after the cron"]).toBe("1");
    expect(workerd?.["webhooks: the link's event, delivered to the endpoint"]).toMatchObject([
      { body: { type: "link.created", code: "conf-<tag>" }, attempt: "1" },
    ]);
    for (const [i, answers] of others.entries()) {
      for (const name of Object.keys(workerd ?? {})) {
        expect(answers?.[name], `${name}: ${runtimes[i + 1]?.name} against workerd`).toEqual(workerd?.[name]);
      }
    }
    // Delivered once: no second delivery of any runtime's event came later (a redelivery, or two consumers).
    await new Promise((r) => setTimeout(r, 1500));
    for (const code of createdCodes)
      expect(
        deliveries.filter((d) => d.body.code === code),
        code,
      ).toHaveLength(1);
  }, 120_000);

  it("serves the front end (functions/app) the same under wrangler dev, with auth and links as its service bindings", async () => {
    // Without JavaScript, as a browser posts forms: the page, a built file, sign-up, a new link, sign-out. workyard
    // serves the app at /app; wrangler dev serves it at the root of its own port, as Cloudflare would on a domain.
    const walk = async (base: string, tag: string) => {
      const origin = new URL(base).origin;
      const jar = new CookieJar();
      const cookies: string[] = [];
      const send = async (path: string, form?: Record<string, string>) => {
        const res = await fetch(`${base}${path}`, {
          redirect: "manual",
          headers: {
            accept: "text/html",
            cookie: jar.header(),
            ...(form ? { origin, "content-type": "application/x-www-form-urlencoded" } : {}),
          },
          ...(form ? { method: "POST", body: new URLSearchParams(form).toString() } : {}),
        });
        for (const line of jar.take(res)) {
          const [pair = "", ...attributes] = line.split(";").map((p) => p.trim());
          const [name = ""] = pair.split("=");
          // Its attributes, the path said relative to where the app is served ("/app" here, "/" on a port of its own).
          const served = new URL(base).pathname.replace(/\/$/, "") || "/";
          cookies.push(`${name}: ${attributes.map((a) => (a.toLowerCase() === `path=${served}` ? "Path=<served at>" : a)).join("; ")}`);
        }
        const text = await res.text();
        const notice = /class="notice [a-z]+"[^>]*>([^<]*)</.exec(text)?.[1] ?? null;
        return { status: res.status, type: res.headers.get("content-type"), location: res.headers.get("location"), notice, text };
      };
      const email = `conf-app-${tag}-${Date.now().toString(36)}@example.com`;
      const page = await send("/");
      const script = /assets\/index-[\w-]+\.js/.exec(page.text)?.[0] ?? "assets/missing.js";
      const asset = await send(`/${script}`);
      const signUp = await send("/session", { intent: "sign-up", email, password: "correct-horse-battery" });
      const signedIn = await send("/");
      const create = await send("/links", { url: "https://example.com/conformance-app", code: `conf-app-${tag}` });
      const listed = await send("/");
      const signOut = await send("/session/end", { x: "1" });
      const after = await send("/");
      return {
        page: {
          status: page.status,
          type: page.type,
          base: /<base href="([^"]*)"/.exec(page.text)?.[1],
          form: page.text.includes('action="session"'),
        },
        asset: { status: asset.status, type: asset.type },
        signUp: {
          status: signUp.status,
          location: signUp.location?.replace(`${new URL(base).pathname.replace(/\/$/, "")}/`, "<served at>/"),
        },
        signedIn: { status: signedIn.status, notice: signedIn.notice?.replace(email, "<email>") },
        create: { status: create.status },
        listed: {
          notice: listed.notice?.replace(`${origin}/links/conf-app-${tag}`, "<origin>/links/conf-app-<tag>"),
          row: listed.text.includes(`conf-app-${tag}</code>`),
        },
        signOut: { status: signOut.status, notice: after.notice, form: after.text.includes('action="session"') },
        cookies: [...new Set(cookies)].sort(),
      };
    };
    const onWorkerd = await walk(`${stack.sup.url}/app`, "w");
    const onWrangler = await walk(appUnderWrangler, "c");
    expect(onWorkerd).toMatchObject({
      page: { status: 200, base: "/app/", form: true },
      asset: { status: 200, type: "text/javascript; charset=utf-8" },
      signUp: { status: 303 },
      signedIn: { status: 200, notice: "Welcome, <email>." },
      create: { status: 303 },
      listed: { row: true },
      signOut: { status: 303, notice: "Signed out.", form: true },
    });
    expect({ ...onWrangler, page: { ...onWrangler.page, base: onWrangler.page.base === "/" ? "/app/" : onWrangler.page.base } }).toEqual(
      onWorkerd,
    );
  }, 60_000);

  it("each function's merged config passes wrangler deploy --dry-run", async () => {
    const root = stack.project.paths.root;
    const dryRun = (fn: FunctionName) =>
      new Promise<{ fn: FunctionName; code: number | null; output: string }>((resolve) => {
        const args = ["deploy", "--dry-run", "-c", join(root, ".workyard/wrangler", `${fn}.json`), "--outdir", join(root, ".dry-run", fn)];
        const { child, output } = spawnWrangler(args, root);
        child.once("exit", (code) => resolve({ fn, code, output: output() }));
      });
    for (const out of await Promise.all([...FUNCTIONS, "app" as FunctionName].map(dryRun))) {
      expect(out.code, `${out.fn}: ${out.output}`).toBe(0);
      expect(out.output).toContain("--dry-run: exiting now.");
    }
  }, 120_000);
});
