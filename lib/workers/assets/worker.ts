/**
 * The assets worker: what a function's assets binding (`[assets] binding = "ASSETS"`, `env.ASSETS.fetch(request)`)
 * reaches, as on Cloudflare. The same serving as the gateway's (serve.ts) over the function's own table and stored
 * files; a path with no asset, after not_found_handling, is a plain 404.
 */
import type { AssetsManifest } from "../../shared/assets.ts";
import { FORWARDED_PREFIX_HEADER } from "../../shared/names.ts";
import { serveAsset } from "./serve.ts";
import type { FileStore } from "./serve.ts";

interface AssetsWorkerEnv {
  FILES: FileStore;
  MANIFEST: AssetsManifest;
}

export default {
  async fetch(request: Request, env: AssetsWorkerEnv): Promise<Response> {
    const url = new URL(request.url);
    // Redirects keep the path the client sees: the gateway's prefix, when the request came through it.
    const prefix = request.headers.get(FORWARDED_PREFIX_HEADER) ?? "";
    const answer = await serveAsset({ request, path: url.pathname, search: url.search, prefix }, env.MANIFEST, env.FILES);
    return answer ?? new Response("Not Found", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
  },
};
