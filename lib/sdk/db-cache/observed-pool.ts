/**
 * The host's pool as function code sees it when the read cache is on: the same postgres.js `Sql`, except that a
 * statement that writes (statement.ts) resolves only after the cache has dropped what it read of those tables and
 * the other hosts have been told. Inside `sql.begin` the writes are collected and told after the commit, so no
 * process drops an entry before the rows it would be refreshed from exist. On a reserved connection, where the
 * code may run BEGIN and COMMIT itself, each write is told at once and again after the COMMIT (or the release).
 *
 * A query is observed through its `then` (what `await` calls), so `.values()`, `.raw()`, `.forEach()` and fragments
 * keep working. Not observed: `.cursor()`, a query started with `.execute()` and never awaited, and COPY through
 * `.writable()` (it resolves before its rows are sent): a write through them is bounded by the readers' max age.
 */
import type { PendingQuery, Row, Sql } from "postgres";
import type { Effect } from "./statement.ts";

/**
 * What the cache does when a statement through the pool has written: drop, tell, then let the caller go on.
 * `settled` is false when the statement failed: it may still have written (a lost connection after a commit), so the
 * cache is told anyway, but the caller's error does not wait for it.
 */
export type AfterWrite = (tables: readonly string[] | "all", settled: boolean) => Promise<void>;

type Tables = Set<string> | "all";

/** Where a wrapped `sql` is: the pool, a transaction (writes wait for its end), or a reserved connection. */
type Scope =
  { kind: "pool" } | { kind: "transaction"; collect: (t: Tables) => void } | { kind: "reserved"; pending: Set<string> | "all" | undefined };

type AnyQuery = PendingQuery<Row[]>;
type Method = (...args: unknown[]) => unknown;

/** A statement that ends a transaction the code began itself (postgres.js's own test for the same). */
const ENDS = /^\s*(commit|end)\b/i;

/** `pool` with its writes reported to `afterWrite`; `effect` classifies a statement's text. */
export function observedPool(pool: Sql, effect: (text: string) => Effect, afterWrite: AfterWrite): Sql {
  const tell = (tables: Tables, settled: boolean) => afterWrite(tables === "all" ? "all" : [...tables], settled);

  const written = (q: AnyQuery): Tables | undefined => {
    let text: string;
    try {
      const parts = (q as unknown as { parts?: { text: string }[] }).parts; // sql.batch([...])
      text = parts ? parts.map((p) => p.text).join(";\n") : (q as unknown as { text: string }).text;
    } catch {
      return undefined; // the query cannot be built; postgres.js rejects it
    }
    const e = effect(text);
    return e.kind === "all" ? "all" : e.kind === "write" ? new Set(e.tables) : undefined;
  };

  /** Reports each write of `q` once the server has answered, as `scope` wants it. */
  const observe = (q: AnyQuery, scope: Scope): AnyQuery => {
    if (!isQuery(q)) return q; // a helper such as sql(object) or sql("name"): not a statement
    const then = q.then;
    let settled: Promise<unknown> | undefined;
    const report = async (failed: boolean) => {
      if (scope.kind === "reserved" && !failed && ENDS.test((q as unknown as { text: string }).text) && scope.pending) {
        // The code's own COMMIT: what it wrote since is told again, now that it is there to be read.
        const pending = scope.pending;
        scope.pending = undefined;
        await tell(pending, true);
        return;
      }
      const tables = written(q);
      if (!tables) return;
      if (scope.kind === "transaction") return scope.collect(tables);
      if (scope.kind === "reserved") scope.pending = merge(scope.pending, tables);
      // A failed statement may still have written (a lost connection after its commit): told, without waiting.
      if (failed) void tell(tables, false);
      else await tell(tables, true);
    };
    Object.defineProperty(q, "then", {
      configurable: true,
      writable: true,
      value(ok?: (v: unknown) => unknown, fail?: (e: unknown) => unknown) {
        settled ??= then.call(
          q,
          async (rows: unknown) => {
            await report(false);
            return rows;
          },
          async (error: unknown) => {
            await report(true);
            throw error;
          },
        );
        return settled.then(ok, fail);
      },
    });
    return q;
  };

  const wrap = (sql: Sql, scope: Scope): Sql =>
    new Proxy(sql, {
      apply(target, self, args: unknown[]) {
        const result = Reflect.apply(target, self, args) as unknown;
        return isTemplate(args[0]) ? observe(result as AnyQuery, scope) : result;
      },
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== "function") return value;
        const method = value as Method;
        switch (prop) {
          case "unsafe":
          case "file":
          case "batch":
            return (...args: unknown[]) => observe(method.apply(target, args) as AnyQuery, scope);
          case "begin":
            return scope.kind === "transaction"
              ? (...args: unknown[]) =>
                  method.apply(
                    target,
                    withScope(args, (s) => wrap(s, scope)),
                  )
              : (...args: unknown[]) => transaction(method, target, args);
          case "savepoint":
            // savepoint`...` runs the statement in a savepoint of its own: postgres.js calls back with its sql.
            if (scope.kind !== "transaction") return value;
            return (...args: unknown[]) =>
              isTemplate(args[0])
                ? method.call(target, (s: Sql) => (wrap(s, scope) as unknown as Method)(...args))
                : method.apply(
                    target,
                    withScope(args, (s) => wrap(s, scope)),
                  );
          case "reserve":
            return (...args: unknown[]) => {
              const reserved = method.apply(target, args) as Promise<Sql>;
              return keepControls(
                reserved,
                reserved.then((r) => reservedConnection(r)),
              );
            };
          default:
            return value;
        }
      },
    }) as Sql;

  /** A reserved connection: writes are told at once and again after a COMMIT, or at the release if none came. */
  function reservedConnection(reserved: Sql): Sql {
    const scope: Scope = { kind: "reserved", pending: undefined };
    const release = (reserved as unknown as { release: () => void }).release;
    const wrapped = wrap(reserved, scope);
    Object.defineProperty(reserved, "release", {
      configurable: true,
      writable: true,
      value() {
        if (scope.kind === "reserved" && scope.pending) void tell(scope.pending, true);
        return release.call(reserved);
      },
    });
    return wrapped;
  }

  /** A top-level `begin`: its writes are reported after it ends (committed, or perhaps committed when it failed). */
  function transaction(begin: Method, target: Sql, args: unknown[]): Promise<unknown> {
    let tables: Tables | undefined;
    const collect = (t: Tables) => {
      tables = merge(tables, t);
    };
    const started = begin.apply(
      target,
      withScope(args, (s) => wrap(s, { kind: "transaction", collect })),
    ) as Promise<unknown>;
    const ended = started.then(
      async (result) => {
        if (tables) await tell(tables, true);
        return result;
      },
      (error: unknown) => {
        // It may have ended after its COMMIT was sent (a lost connection): told, without waiting.
        if (tables) void tell(tables, false);
        throw error;
      },
    );
    return keepControls(started, ended);
  }

  return wrap(pool, { kind: "pool" });
}

function merge(into: Tables | undefined, add: Tables): Tables {
  if (into === "all" || add === "all") return "all";
  const out = into ?? new Set<string>();
  for (const name of add) out.add(name);
  return out;
}

/** `begin` and `reserve` return promises with `cancel()` and `signal(s)`: the wrapped promise keeps them. */
function keepControls<T>(original: Promise<unknown>, wrapped: Promise<T>): Promise<T> {
  const controls = original as unknown as { cancel?: () => unknown; signal?: (s: AbortSignal) => unknown };
  const out = wrapped as Promise<T> & { cancel?: () => unknown; signal?: (s: AbortSignal) => unknown };
  if (typeof controls.cancel === "function") out.cancel = () => controls.cancel?.();
  if (typeof controls.signal === "function")
    out.signal = (s: AbortSignal) => {
      controls.signal?.(s);
      return out;
    };
  return out;
}

/** `begin(fn)`, `begin(mode, fn)`, `savepoint(fn)`, `savepoint(name, fn)`: the callback gets `scope(sql)` instead. */
function withScope(args: unknown[], scope: (sql: Sql) => Sql): unknown[] {
  const last = args.length - 1;
  const fn = args[last];
  if (typeof fn !== "function") return args;
  return [...args.slice(0, last), (sql: Sql) => (fn as (s: Sql) => unknown)(scope(sql))];
}

const isTemplate = (x: unknown): boolean => Array.isArray(x) && Array.isArray((x as unknown as { raw?: unknown }).raw);

/** A postgres.js query (a Promise subclass with a text), not a helper. */
const isQuery = (x: unknown): boolean => x instanceof Promise && "text" in x;
