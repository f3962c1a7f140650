/**
 * A copy of a request with part of its init changed (a body read ahead, a method), keeping what the runtime attached
 * to the object: workerd's copy keeps `request.cf` by itself, but on Deno lib/deno/serve.ts sets `cf` (the client's
 * address, from the socket) on the request object, which a plain `new Request(request, init)` would drop, and the
 * client IP would then come from a header the client chose (client-ip.ts).
 */
export function copyRequest(request: Request, init: RequestInit): Request {
  const copy = new Request(request, init);
  const own = Object.getOwnPropertyDescriptor(request, "cf");
  if (own) Object.defineProperty(copy, "cf", own);
  return copy;
}
