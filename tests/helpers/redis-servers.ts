/**
 * Helpers for the Redis proxy tests: is a real Redis there, a private redis-server to kill and restart,
 * raw HTTP calls, and a Server-Sent Events reader.
 */
import { spawnTied } from "../../lib/node/common/tied-child.ts";
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import type { AddressInfo } from "node:net";

/**
 * Sends one inline command to host:port and reads the answer until `read` makes something of it; `fallback` when
 * nothing answers within timeoutMs (or the connection fails).
 */
function askRedis<T>(
  host: string,
  port: number,
  command: string,
  read: (answer: string) => T | undefined,
  fallback: T,
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let answer = "";
    const done = (value: T) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(fallback), timeoutMs);
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk) => {
      answer += chunk.toString();
      const value = read(answer);
      if (value !== undefined) done(value);
    });
    socket.once("error", () => done(fallback));
  });
}

/** True when something at host:port answers PING with PONG within timeoutMs. */
export function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return askRedis(host, port, "PING", (answer) => (answer.includes("\r\n") ? answer.startsWith("+PONG") : undefined), false, timeoutMs);
}

/** The process id of the Redis server answering on host:port (INFO server), or undefined. */
function redisPid(host: string, port: number, timeoutMs = 500): Promise<number | undefined> {
  return askRedis<number | undefined>(
    host,
    port,
    "INFO server",
    (answer) => {
      const pid = /process_id:(\d+)/.exec(answer)?.[1];
      return pid === undefined ? undefined : Number(pid);
    },
    undefined,
    timeoutMs,
  );
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export const REDIS_SERVER_BINARY = "/usr/bin/redis-server";

export function haveRedisServer(): boolean {
  return existsSync(REDIS_SERVER_BINARY);
}

class PortTakenError extends Error {}

/** A throwaway redis-server of the test's own on a loopback port: never the machine's shared one. */
export class PrivateRedis {
  private child: ChildProcess | undefined;
  readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    // Tied to this process: a test run killed outright leaves no redis-server behind.
    this.child = spawnTied(
      REDIS_SERVER_BINARY,
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
      { stdio: "ignore" },
    );
    const child = this.child;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      // Something else may have taken the port since it was picked (another test process): this server then exits,
      // and the one answering is not ours.
      if (child.exitCode !== null)
        throw new PortTakenError(`redis-server could not listen on port ${this.port} (exit ${child.exitCode}): taken`);
      if ((await redisAnswers("127.0.0.1", this.port)) && (await redisPid("127.0.0.1", this.port)) === child.pid) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${this.port} did not answer within 10 s`);
  }

  /** A private redis-server on a free port, on another one if the port is taken before it listens. */
  static async onFreePort(): Promise<PrivateRedis> {
    for (let attempt = 1; ; attempt++) {
      const redis = new PrivateRedis(await freePort());
      try {
        await redis.start();
        return redis;
      } catch (err) {
        if (!(err instanceof PortTakenError) || attempt >= 3) throw err;
      }
    }
  }

  /** SIGKILL: an abrupt outage, not a polite shutdown. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }
}

export interface Raw {
  status: number;
  headers: Headers;
  json: unknown;
  text: string;
}

/** fetch that reads the body as text and parses it as JSON when it is. */
export async function raw(url: string, init: RequestInit = {}): Promise<Raw> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Reads `data: ` lines of a Server-Sent Events response one by one. */
export class SseReader {
  private buffer = "";
  private readonly lines: string[] = [];
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();

  private readonly controller: AbortController;

  constructor(body: ReadableStream<Uint8Array>, controller: AbortController) {
    this.controller = controller;
    this.reader = body.getReader();
  }

  /** The next `data:` line's payload; fails after timeoutMs. */
  async next(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no SSE data line in time");
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no SSE data line in time")), left);
      });
      const { value, done } = await Promise.race([this.reader.read(), timeout]).finally(() => clearTimeout(timer));
      if (done) throw new Error("the SSE stream ended");
      this.buffer += this.decoder.decode(value, { stream: true });
      const parts = this.buffer.split("\n");
      this.buffer = parts.pop() ?? "";
      for (const line of parts) if (line.startsWith("data: ")) this.lines.push(line.slice(6));
    }
    return this.lines.shift() ?? "";
  }

  close(): void {
    this.controller.abort();
  }
}

/** Opens an SSE subscription the way @upstash/redis does (POST, Accept: text/event-stream, body []). */
export async function openSse(url: string, token: string): Promise<{ status: number; headers: Headers; reader: SseReader }> {
  const controller = new AbortController();
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, accept: "text/event-stream", "content-type": "application/json" },
    body: "[]",
    signal: controller.signal,
  });
  if (!res.body) throw new Error("no body");
  return { status: res.status, headers: res.headers, reader: new SseReader(res.body, controller) };
}
