import { describe, expect, it } from "vitest";
import { clientIpOf } from "../../lib/sdk/client-ip.ts";

/** A Request as workerd hands it over: `cf.clientIp` is the peer address with its port. */
function request(peer: string | undefined, headers: Record<string, string> = {}): Request {
  const req = new Request("http://127.0.0.1:8787/", { headers });
  if (peer !== undefined) Object.defineProperty(req, "cf", { value: { clientIp: peer } });
  return req;
}

describe("clientIpOf", () => {
  it("is the peer workerd saw, without its port", () => {
    expect(clientIpOf(request("203.0.113.7:51234"))).toBe("203.0.113.7");
    expect(clientIpOf(request("[2001:db8::1]:51234"))).toBe("2001:db8::1");
    expect(clientIpOf(request("2001:db8::1"))).toBe("2001:db8::1");
  });

  it("believes X-Forwarded-For only from a proxy on this machine, and then only its last entry", () => {
    expect(clientIpOf(request("127.0.0.1:4000", { "x-forwarded-for": "10.0.0.1, 198.51.100.9" }))).toBe("198.51.100.9");
    expect(clientIpOf(request("[::1]:4000", { "x-forwarded-for": "198.51.100.9" }))).toBe("198.51.100.9");
    expect(clientIpOf(request("203.0.113.7:51234", { "x-forwarded-for": "198.51.100.9" }))).toBe("203.0.113.7");
    expect(clientIpOf(request("127.0.0.1:4000", { "x-forwarded-for": "not an address" }))).toBe("127.0.0.1");
  });

  it("uses Cloudflare's CF-Connecting-IP where cf carries no peer, and says unknown when nothing does", () => {
    expect(clientIpOf(request(undefined, { "cf-connecting-ip": "198.51.100.9" }))).toBe("198.51.100.9");
    expect(clientIpOf(request(undefined, { "cf-connecting-ip": "<script>" }))).toBe("unknown");
    expect(clientIpOf(request(undefined))).toBe("unknown");
  });

  it("never believes an x-client-ip header", () => {
    expect(clientIpOf(request("203.0.113.7:1", { "x-client-ip": "1.2.3.4" }))).toBe("203.0.113.7");
  });
});
