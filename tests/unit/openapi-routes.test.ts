import type { MiddlewareHandler } from "hono";
import { describe, expect, it } from "vitest";
import { createApp } from "../../lib/sdk/app.ts";
import { ApiError } from "../../lib/sdk/errors.ts";
import { afterInput, createRoute, errorResponses, jsonBody, jsonResponse, security, z } from "../../lib/sdk/openapi.ts";
import { validate } from "../../lib/sdk/validate.ts";

const item = z.object({ name: z.string().min(1), size: z.number().int().optional() });
const query = z.object({ limit: z.coerce.number().int().min(1).max(10).default(5) });

/** Refuses a request without `x-ok`: stands in for requireAuth, which needs a database. */
const guard: MiddlewareHandler = async (c, next) => {
  if (!c.req.header("x-ok")) throw new ApiError(401, "Sign in first");
  await next();
};

/** The same input checked both ways: `validate(...)` on /plain, a documented route on /documented. */
function twinApp() {
  const app = createApp({ api: { title: "twins", description: "unit test" } });
  app.post(
    "/plain/:id",
    guard,
    validate("param", z.object({ id: z.string().regex(/^\d+$/) })),
    validate("query", query),
    validate("json", item),
    (c) => c.json({ ok: true, limit: c.req.valid("query").limit, name: c.req.valid("json").name }, 201),
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/documented/{id}",
      security: security.userOrApiKey,
      middleware: [guard],
      request: { params: z.object({ id: z.string().regex(/^\d+$/) }), query, body: jsonBody(item, { name: "a" }) },
      responses: {
        201: jsonResponse(z.object({ ok: z.boolean(), limit: z.number(), name: z.string() }), "made"),
        ...errorResponses({ 409: { description: "taken", code: "name_taken" } }),
      },
    }),
    (c) => c.json({ ok: true, limit: c.req.valid("query").limit, name: c.req.valid("json").name }, 201),
  );
  return app;
}

const json = { "content-type": "application/json", "x-ok": "1" };

describe("documented routes check input as validate() does", () => {
  const app = twinApp();
  const both = async (path: string, init: RequestInit) => {
    const answers = await Promise.all(
      ["/plain", "/documented"].map(async (base) => {
        const res = await app.request(`${base}${path}`, init);
        const body = (await res.json()) as { error?: { requestId?: string } };
        if (body.error) delete body.error.requestId;
        return { status: res.status, body };
      }),
    );
    expect(answers[1]).toEqual(answers[0]);
    return answers[0] as { status: number; body: { error?: { code: string; issues?: { path: string }[] } } };
  };

  it("answers the same for good input", async () => {
    const r = await both("/7?limit=3", { method: "POST", headers: json, body: '{"name":"x"}' });
    expect(r.status).toBe(201);
  });

  it("400 invalid_input with the same issues for a bad body, query or path parameter", async () => {
    const body = await both("/7", { method: "POST", headers: json, body: '{"name":"","size":1.5}' });
    expect(body.status).toBe(400);
    expect(body.body.error?.code).toBe("invalid_input");
    expect(body.body.error?.issues?.map((i) => i.path).sort()).toEqual(["name", "size"]);
    expect((await both("/7?limit=99", { method: "POST", headers: json, body: '{"name":"x"}' })).status).toBe(400);
    expect((await both("/x", { method: "POST", headers: json, body: '{"name":"x"}' })).status).toBe(400);
  });

  it("415 for a body without a JSON content type (also none), 400 for an unpaired surrogate", async () => {
    const plain = await both("/7", { method: "POST", headers: { "x-ok": "1", "content-type": "text/plain" }, body: '{"name":"x"}' });
    expect(plain.status).toBe(415);
    expect((await both("/7", { method: "POST", headers: { "x-ok": "1" } })).status).toBe(415);
    const lone = await both("/7", { method: "POST", headers: json, body: '{"name":"\\ud800"}' });
    expect(lone.status).toBe(400);
    expect(lone.body.error?.issues?.[0]?.path).toBe("name");
  });

  it("runs the route's middleware before its input checks: no credentials is 401, whatever the body", async () => {
    expect((await both("/7", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" })).status).toBe(401);
  });

  it("runs afterInput middleware after them", async () => {
    const app = createApp();
    const seen: string[] = [];
    app.openapi(
      createRoute({
        method: "post",
        path: "/",
        middleware: [
          afterInput(async (c, next) => {
            seen.push((await c.req.json<{ name: string }>()).name);
            await next();
          }),
        ],
        request: { body: jsonBody(item, { name: "a" }) },
        responses: { 204: { description: "done" } },
      }),
      (c) => c.body(null, 204),
    );
    expect((await app.request("/", { method: "POST", headers: json, body: '{"size":1}' })).status).toBe(400);
    expect((await app.request("/", { method: "POST", headers: json, body: '{"name":"b"}' })).status).toBe(204);
    expect(seen).toEqual(["b"]);
  });

  it("keeps 404 and 405 with Allow for documented routes", async () => {
    const res = await app.request("/documented/7");
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect((await app.request("/nope")).status).toBe(404);
  });

  it("refuses a route's own validation hook", () => {
    const app = createApp();
    const route = createRoute({ method: "get", path: "/", responses: { 204: { description: "none" } } });
    expect(() =>
      app.openapi(
        route,
        (c) => c.body(null, 204),
        () => undefined,
      ),
    ).toThrow(/hook/);
  });
});

describe("the document at /openapi.json", () => {
  it("is OpenAPI 3.1 with the implied error answers, the Error component and the security schemes used", async () => {
    const res = await twinApp().request("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      info: { title: string };
      servers: { url: string }[];
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> }>>;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("twins");
    expect(doc.servers).toEqual([{ url: "/", description: "This function" }]);
    // Only the documented route: /plain is not, /openapi.json does not list itself.
    expect(Object.keys(doc.paths)).toEqual(["/documented/{id}"]);
    const responses = doc.paths["/documented/{id}"]?.post?.responses ?? {};
    expect(Object.keys(responses).sort()).toEqual(["201", "400", "401", "403", "409", "413", "415"]);
    expect(responses["409"]?.content?.["application/json"]?.schema.$ref).toBe("#/components/schemas/Error");
    expect(Object.keys(doc.components.schemas)).toContain("Error");
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["accessToken", "apiKey", "apiKeyBearer"]);
  });

  it("is made once, has an ETag and answers 304 to If-None-Match; servers follow the gateway's prefix", async () => {
    const app = twinApp();
    const first = await app.request("/openapi.json");
    const etag = first.headers.get("etag");
    expect(etag).toMatch(/^"[0-9a-f]{24}"$/);
    expect(first.headers.get("cache-control")).toBe("public, max-age=60");
    const again = await app.request("/openapi.json", { headers: { "if-none-match": `W/${etag}` } });
    expect(again.status).toBe(304);
    const prefixed = await app.request("/openapi.json", { headers: { "x-forwarded-prefix": "/twins" } });
    expect(((await prefixed.json()) as { servers: unknown }).servers).toEqual([
      { url: "/twins", description: "Through the gateway, under /twins" },
    ]);
    expect(prefixed.headers.get("etag")).not.toBe(etag);
  });
});
