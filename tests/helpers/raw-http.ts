/**
 * A raw HTTP/1.1 exchange over a TCP socket, for requests fetch() refuses to send or would tidy up: CR/LF inside
 * header values, paths with `..` and encoded dots left as they are, absolute-form targets, oversized headers.
 */
import { connect } from "node:net";

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

function parse(raw: string): RawAnswer | undefined {
  const end = raw.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const [statusLine = "", ...lines] = raw.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(":");
    if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  const body = raw.slice(end + 4);
  const length = Number(headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(length) && Buffer.byteLength(body) < length) return undefined;
  return { status: Number(statusLine.split(" ")[1] ?? 0), headers, body, raw };
}

/** Sends `head` (request line and headers, CRLF-separated, no final blank line) and an optional body; reads one answer. */
export function rawRequest(port: number, head: string, body = "", host = "127.0.0.1"): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let raw = "";
    const socket = connect({ host, port }, () => {
      socket.write(`${head}\r\nConnection: close\r\n${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ""}\r\n${body}`);
    });
    const finish = () => {
      const answer = parse(raw);
      socket.destroy();
      if (answer) resolve(answer);
      else reject(new Error(`no complete HTTP answer (got ${JSON.stringify(raw.slice(0, 200))})`));
    };
    socket.setEncoding("utf8");
    socket.setTimeout(10_000, finish);
    socket.on("data", (chunk: string) => {
      raw += chunk;
      if (parse(raw)) finish();
    });
    // A server that refuses a request while it is still being sent (an oversized header) may reset the
    // connection after its answer: the answer counts.
    socket.on("error", (err) => {
      const answer = parse(raw);
      if (answer) resolve(answer);
      else reject(err);
    });
    socket.on("close", finish);
  });
}

/**
 * Opens a connection, writes `data` exactly as given (no header added), and answers what came back before the server
 * closed the connection or `timeoutMs` passed: the raw text, and whether the server closed it.
 */
export function rawExchange(port: number, data: string, timeoutMs = 5000): Promise<{ raw: string; status: number; closed: boolean }> {
  return new Promise((resolve) => {
    let raw = "";
    let closed = false;
    const socket = connect({ host: "127.0.0.1", port }, () => socket.write(data));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ raw, status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0), closed });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (raw += chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closed = true;
      done();
    });
  });
}
