/**
 * Asking a running supervisor's internal socket, with its token: any path, and one Prometheus sample of /metrics.
 * `supervisor` is read at each call, so a test file can make these before its beforeAll starts one.
 */
import type { Supervisor } from "../../lib/node/runtime/supervisor.ts";

type Target = Pick<Supervisor, "internalUrl" | "internalToken">;

export function internalSocket(supervisor: () => Target) {
  const internal = (path: string, init: RequestInit = {}) => {
    const { internalUrl, internalToken } = supervisor();
    return fetch(`${internalUrl}${path}`, { ...init, headers: { authorization: `Bearer ${internalToken}`, ...init.headers } });
  };
  /** The value of the sample written exactly as `line` (name and labels), or undefined when there is none. */
  const metric = async (line: string): Promise<number | undefined> => {
    const text = await (await internal("/metrics")).text();
    const found = text.split("\n").find((l) => l.startsWith(`${line} `));
    return found === undefined ? undefined : Number(found.slice(line.length + 1));
  };
  return { internal, metric };
}
