/**
 * Which commands the Redis proxy (lib/node/redis/proxy/) and the Redis object (lib/workers/redis/) refuse, and
 * why. Every client shares one Redis connection, so a command that blocks it (BLPOP), turns it into something else
 * (SUBSCRIBE, MONITOR, MULTI) or changes its state (SELECT, HELLO, AUTH) would stall or corrupt everybody's traffic;
 * each has an HTTP way instead, or none.
 */

/** One command's words, the name first: strings, or bytes (the proxy's Buffers) that print as the word. */
export type CommandWords = readonly (string | { toString(): string })[];

/** The lower-case command name of a command, "" when it has none. */
export function commandName(args: CommandWords): string {
  const name = args[0];
  return name === undefined ? "" : name.toString().toLowerCase();
}

const BLOCKING = new Set(["blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "wait", "waitaof"]);

const SUBSCRIBER = new Set(["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"]);

const TRANSACTION = new Set(["multi", "exec", "discard", "watch", "unwatch"]);

/** Commands that change or end the shared connection, block the whole server, or replicate. */
const CONNECTION_OR_SERVER = new Set([
  "select",
  "swapdb",
  "hello",
  "reset",
  "quit",
  "auth",
  "readonly",
  "readwrite",
  "sync",
  "psync",
  "replconf",
  "replicaof",
  "slaveof",
  "failover",
  "shutdown",
  "debug",
]);

/** CLIENT subcommands that only read. The others (REPLY, PAUSE, KILL, SETNAME, TRACKING ...) act on the shared connection. */
const CLIENT_READ_ONLY = new Set(["id", "info", "list", "getname"]);

/** XREAD and XREADGROUP block only with a BLOCK option, which comes before STREAMS. */
function hasBlockOption(args: CommandWords): boolean {
  for (let i = 1; i < args.length; i++) {
    const word = String(args[i]).toLowerCase();
    if (word === "streams") return false;
    if (word === "block") return true;
    // The words an option takes are names or numbers, not options: a group or consumer may be called "streams".
    if (word === "group") i += 2;
    else if (word === "count") i += 1;
  }
  return false;
}

/**
 * Why the proxy refuses this command, or undefined when it may run. The message is the error the
 * client sees; it says what to do instead.
 */
export function refusal(args: CommandWords): string | undefined {
  const name = commandName(args);
  const upper = name.toUpperCase();
  if (BLOCKING.has(name) || ((name === "xread" || name === "xreadgroup") && hasBlockOption(args))) {
    return (
      `ERR ${upper}${name.startsWith("x") ? " with BLOCK" : ""} would block the connection every client shares, ` +
      "so this proxy refuses it: use the non-blocking form (LPOP, RPOP, ZPOPMIN, XREAD without BLOCK ...) and poll"
    );
  }
  if (SUBSCRIBER.has(name)) {
    return (
      `ERR ${upper} is not available as a command: subscribe with GET or POST /subscribe/<channel> ` +
      "(or /psubscribe/<pattern>) and the header Accept: text/event-stream"
    );
  }
  if (name === "monitor") {
    return "ERR MONITOR would stream every client's commands and is refused by this proxy";
  }
  if (TRANSACTION.has(name)) {
    return `ERR ${upper} is not available as a command: send the whole transaction to POST /multi-exec`;
  }
  if (CONNECTION_OR_SERVER.has(name)) {
    return `ERR ${upper} acts on the connection or server every client shares and is refused by this proxy`;
  }
  if (name === "client") {
    const sub = String(args[1] ?? "").toLowerCase();
    if (!CLIENT_READ_ONLY.has(sub)) {
      return `ERR CLIENT ${sub.toUpperCase()} acts on the connection every client shares and is refused by this proxy`;
    }
  }
  return undefined;
}

/**
 * Runs a pipeline with its refused commands answered alone, each by `refused(why)` in its place (auto-pipelining
 * batches unrelated callers together, so one caller's refused command must not fail the others'); the rest go to
 * `run` in one go, in order, and a reply `run` did not give is `missing()`.
 */
export async function pipelineWithRefusals<C extends CommandWords, T>(
  commands: readonly C[],
  run: (allowed: C[]) => Promise<readonly T[]>,
  refused: (why: string) => T,
  missing: () => T,
): Promise<T[]> {
  const reasons = commands.map(refusal);
  const allowed = commands.filter((_, i) => reasons[i] === undefined);
  const ran = allowed.length > 0 ? await run(allowed) : [];
  let next = 0;
  return reasons.map((why) => (why !== undefined ? refused(why) : (ran[next++] ?? missing())));
}

/** Why a transaction is discarded whole (one of its commands is refused, as Redis discards one with a bad command), or undefined. */
export function transactionRefusal(commands: readonly CommandWords[]): string | undefined {
  for (const [i, c] of commands.entries()) {
    const why = refusal(c);
    if (why !== undefined) return `EXECABORT Transaction discarded: command ${i} (${commandName(c).toUpperCase()}): ${why}`;
  }
  return undefined;
}
