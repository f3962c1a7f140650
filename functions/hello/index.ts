/**
 * hello: the smallest function. No I/O; shows the app factory, a var from wrangler.toml, a path
 * parameter, a validated query and a validated JSON body.
 */
import { z } from "zod";
import { createApp } from "../../lib/worker/app.ts";
import { defineEnv } from "../../lib/worker/env.ts";
import { validate } from "../../lib/worker/validate.ts";

const env = defineEnv(z.object({ APP_NAME: z.string(), GREETING: z.string().default("Hello") }));

const app = createApp();

app.get("/", (c) => c.json({ message: `${env(c).GREETING} from ${env(c).APP_NAME}`, requestId: c.get("requestId") }));

app.get("/greet/:name", validate("query", z.object({ shout: z.enum(["true", "false"]).optional() })), (c) => {
  const greeting = `${env(c).GREETING}, ${c.req.param("name")}!`;
  return c.json({ message: c.req.valid("query").shout === "true" ? greeting.toUpperCase() : greeting });
});

app.post("/echo", validate("json", z.object({ text: z.string().max(1000) })), (c) => c.json({ echo: c.req.valid("json").text }));

export default app;
