/**
 * hello: the smallest function. No I/O; shows the app factory, a var from wrangler.toml, documented routes (a path
 * parameter, a validated query, a validated JSON body: see /hello/openapi.json) and an HTML page whose input is
 * escaped by construction.
 */
import { html } from "hono/html";
import { createApp } from "#workyard/app";
import { defineEnv } from "#workyard/env";
import { createRoute, jsonBody, jsonResponse, z } from "#workyard/openapi";

const env = defineEnv(z.object({ APP_NAME: z.string(), GREETING: z.string().default("Hello") }));

const app = createApp({ api: { title: "hello", description: "The smallest function: greetings, an echo and an HTML card." } });

const name = z.string().openapi({ param: { name: "name", in: "path" }, example: "ada" });
const message = z.object({ message: z.string() });

app.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["hello"],
    summary: "Say hello",
    responses: {
      200: jsonResponse(message.extend({ requestId: z.string() }), "A greeting and the request's id", {
        message: "Hello from workyard",
        requestId: "01JF7Z9Q4W8W1T3K6C2Q0X5V7M",
      }),
    },
  }),
  (c) => c.json({ message: `${env(c).GREETING} from ${env(c).APP_NAME}`, requestId: c.get("requestId") }, 200),
);

app.openapi(
  createRoute({
    method: "get",
    path: "/greet/{name}",
    tags: ["hello"],
    summary: "Greet someone by name",
    request: {
      params: z.object({ name }),
      query: z.object({ shout: z.enum(["true", "false"]).optional().openapi({ description: "true: in capitals", example: "true" }) }),
    },
    responses: { 200: jsonResponse(message, "The greeting", { message: "HELLO, ADA!" }) },
  }),
  (c) => {
    const greeting = `${env(c).GREETING}, ${c.req.valid("param").name}!`;
    return c.json({ message: c.req.valid("query").shout === "true" ? greeting.toUpperCase() : greeting }, 200);
  },
);

app.openapi(
  createRoute({
    method: "post",
    path: "/echo",
    tags: ["hello"],
    summary: "Echo a text back",
    request: { body: jsonBody(z.object({ text: z.string().max(1000) }), { text: "Hi there" }) },
    responses: { 200: jsonResponse(z.object({ echo: z.string() }), "The same text", { echo: "Hi there" }) },
  }),
  (c) => c.json({ echo: c.req.valid("json").text }, 200),
);

// HTML from a tagged template: every interpolated value is escaped (`<script>` arrives as `&lt;script&gt;`), so
// a name cannot inject markup. Build HTML this way (or with Hono's JSX), never by concatenating strings.
app.openapi(
  createRoute({
    method: "get",
    path: "/card/{name}",
    tags: ["hello"],
    summary: "A greeting as an HTML page",
    request: { params: z.object({ name }) },
    responses: { 200: { description: "An HTML page", content: { "text/html": { schema: z.string(), example: "<!doctype html>..." } } } },
  }),
  (c) => {
    const greeting = `${env(c).GREETING}, ${c.req.valid("param").name}!`;
    return c.html(
      html`<!doctype html>
        <html lang="en">
          <head>
            <meta charset="utf-8" />
            <title>${greeting}</title>
          </head>
          <body>
            <h1>${greeting}</h1>
            <p>Served by ${env(c).APP_NAME}.</p>
          </body>
        </html>`,
    );
  },
);

export default app;
