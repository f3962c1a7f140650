/**
 * The client's IP address, worked out where it is needed (rate limits, the gateway's access record) rather than
 * on every request: reading `request.cf` makes workerd parse and freeze the cf object, about 9 µs of a 60 µs
 * request (measured with wrk, CPU per request), so the gateway does not do it for requests that never ask.
 *
 * The peer is `cf.clientIp`, which workerd sets on every request it accepts and keeps across service bindings
 * and host objects. When that peer is on this machine (Caddy in front, see docs/production.md), the
 * address the proxy appended last to X-Forwarded-For is the client's. A header from a remote client is never
 * believed. On Cloudflare, where `cf` carries no clientIp, the edge's own CF-Connecting-IP is used.
 */

const loopback = /^(127\.|::1$|::ffff:127\.)/;
const ipLike = /^[0-9a-fA-F.:]{2,45}$/;

/** "127.0.0.1:5123" → "127.0.0.1", "[::1]:5123" → "::1", an address without a port as it is. */
function withoutPort(address: string): string {
  if (address.startsWith("[")) return address.slice(1, address.indexOf("]"));
  const colon = address.indexOf(":");
  return colon !== -1 && colon === address.lastIndexOf(":") ? address.slice(0, colon) : address;
}

/** The client's IP for this request, or "unknown". */
export function clientIpOf(request: Request): string {
  const peer = withoutPort(((request as { cf?: { clientIp?: unknown } }).cf?.clientIp ?? "").toString().trim());
  if (peer === "") {
    const edge = request.headers.get("cf-connecting-ip")?.trim();
    return edge && ipLike.test(edge) ? edge : "unknown";
  }
  if (loopback.test(peer)) {
    const last = request.headers.get("x-forwarded-for")?.split(",").at(-1)?.trim();
    if (last && ipLike.test(last)) return last;
  }
  return peer;
}
