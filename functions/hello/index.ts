/**
 * hello: the smallest function. No I/O; shows the app factory, a var from wrangler.toml, a path
 * parameter, a validated query, a validated JSON body, and an HTML page whose input is escaped by construction.
 */
import { html } from "hono/html";
import { z } from "zod";
import { createApp } from "#workyard/app";
import { defineEnv } from "#workyard/env";
import { validate } from "#workyard/validate";

const env = defineEnv(z.object({ APP_NAME: z.string(), GREETING: z.string().default("Hello") }));

const app = createApp();

app.get("/", (c) => c.json({ message: `${env(c).GREETING} from ${env(c).APP_NAME}`, requestId: c.get("requestId") }));

app.get("/greet/:name", validate("query", z.object({ shout: z.enum(["true", "false"]).optional() })), (c) => {
  const greeting = `${env(c).GREETING}, ${c.req.param("name")}!`;
  return c.json({ message: c.req.valid("query").shout === "true" ? greeting.toUpperCase() : greeting });
});

app.post("/echo", validate("json", z.object({ text: z.string().max(1000) })), (c) => c.json({ echo: c.req.valid("json").text }));

// HTML from a tagged template: every interpolated value is escaped (`<script>` arrives as `&lt;script&gt;`), so
// a name cannot inject markup. Build HTML this way (or with Hono's JSX), never by concatenating strings.
app.get("/card/:name", (c) => {
  const greeting = `${env(c).GREETING}, ${c.req.param("name")}!`;
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
});

export default app;
