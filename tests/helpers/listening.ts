/**
 * The addresses this machine listens on for a TCP port, read from the kernel (/proc/net/tcp and tcp6): what a socket
 * is really bound to, not what a URL says.
 */
import { readFile } from "node:fs/promises";

const LISTEN = "0A";

function ipv4(hex: string): string {
  // Four bytes in host (little-endian) order.
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(".");
}

function ipv6(hex: string): string {
  // Four 32-bit words, each in host order.
  const bytes = [0, 8, 16, 24].flatMap((w) => [6, 4, 2, 0].map((i) => hex.slice(w + i, w + i + 2)));
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(parseInt(`${bytes[i]}${bytes[i + 1]}`, 16).toString(16));
  const text = groups.join(":");
  if (text === "0:0:0:0:0:0:0:0") return "::";
  if (text === "0:0:0:0:0:0:0:1") return "::1";
  return text;
}

/** Each local address with a socket listening on `port` (e.g. ["127.0.0.1"], or ["0.0.0.0"] for every address). */
export async function listeningAddresses(port: number): Promise<string[]> {
  const found: string[] = [];
  for (const [file, decode] of [
    ["/proc/net/tcp", ipv4],
    ["/proc/net/tcp6", ipv6],
  ] as const) {
    const text = await readFile(file, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (!local || state !== LISTEN) continue;
      const [addr, portHex] = local.split(":");
      if (addr && portHex && parseInt(portHex, 16) === port) found.push(decode(addr));
    }
  }
  return [...new Set(found)].sort();
}
