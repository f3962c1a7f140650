/**
 * The code of a function made of assets alone: a folder under functions/ with no index.ts and an [assets] table in
 * its wrangler.toml, as an assets-only Worker on Cloudflare. Files are answered before this runs (with the single
 * page or the 404 page for any path, as when there is no code); what no file answers is a 404 in the platform's shape.
 */
import { errorResponse } from "../../sdk/errors.ts";
import { acceptOrCreateRequestId, REQUEST_ID_HEADER } from "../../sdk/request-id.ts";

export default {
  fetch(request: Request): Response {
    const path = new URL(request.url).pathname.slice(0, 200);
    return errorResponse(404, `No file at ${path}`, acceptOrCreateRequestId(request.headers.get(REQUEST_ID_HEADER)));
  },
};
