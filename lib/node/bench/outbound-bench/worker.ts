/**
 * The outbound bench's function (lib/node/bench/outbound.ts): the same GET to the bench's upstream two ways, so that
 * the rows differ by the helper alone. `GET /fetch` calls it with plain `fetch`; `GET /outbound` through the SDK's
 * `outbound()` as the upstream "target" (wrangler.toml next to this file), whose breaker is shared through the Redis
 * bindings. Both answer the upstream's body and status; while the breaker is open, /outbound answers the helper's
 * 503 (no fallback: what a function gets by default). UPSTREAM_URL is a secret so that a new port does not change
 * the release.
 */
import { createApp } from "../../../sdk/app.ts";
import { outbound } from "../../../sdk/outbound/index.ts";

const app = createApp<{ Bindings: { UPSTREAM_URL: string } }>();

/** The upstream's answer, passed on with its status. */
const pass = async (res: Response) => new Response(await res.text(), { status: res.status });

app.get("/fetch", async (c) => pass(await fetch(c.env.UPSTREAM_URL)));

app.get("/outbound", async (c) => pass(await outbound(c, "target", (_signal, upstream) => upstream.fetch(c.env.UPSTREAM_URL))));

export default app;
