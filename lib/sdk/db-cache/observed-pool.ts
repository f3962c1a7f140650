/**
 * The host's pool as function code sees it when the read cache is on: the same postgres.js `Sql`, except that a
 * statement that writes (statement.ts) resolves only after the cache has dropped what it read of those tables and
 * the other hosts have been told. Inside `sql.begin` the writes are collected and told after the commit, so no
 * process drops an entry before the rows it would be refreshed from exist.
 *
 * A query is observed through its `then` (what `await` calls), so `.values()`, `.raw()` and fragments keep working;
 * `cursor()` and `forEach()` are not observed (a write through them is bounded by the readers' max age only).
 */
import postgres from "postgres";
import type { PendingQuery, Sql } from "postgres";
import type { Effect } from "./statement.ts";

/**
 * What the cache does when a statement through the pool has written: drop, tell, then let the caller go on.
 * `settled` is false when the statement failed in a way that may still have written (a lost connection).
 */
export type AfterWrite = (tables: readonly string[] | "all", settled: boolean) => Promise<void>;

type Tables = Set<string> | "all";

/** `pool` with its writes reported to `afterWrite`; `effect` classifies a statement's text. */
export function observedPool(pool: Sql, effect: (text: string) => Effect, afterWrite: AfterWrite): Sql {
  const written = (q: PendingQuery<postgres.Row[]>): Tables | undefined => {
    let text: string;
    try {
      text = (q as unknown as { text: string }).text;
    } catch {
      return undefined; // the query cannot be built; postgres.js rejects it
    }
    const e = effect(text);
    return e.kind === "all" ? "all" : e.kind === "write" ? new Set(e.tables) : undefined;
  };

  /** Reports each write of `q` (outside a transaction) once the server has answered. */
  const observe = <Q extends PendingQuery<postgres.Row[]>>(q: Q, collect?: (t: Tables) => void): Q => {
    if (!isQuery(q)) return q; // a helper such as sql(object) or sql("name"): not a statement
    const then = q.then;
    let settled: Promise<unknown> | undefined;
    const report = async (failed: boolean, error?: unknown) => {
      // A server error rolled the statement back; any other failure (a lost connection) may have come after a commit.
      if (failed && error instanceof postgres.PostgresError) return;
      const tables = written(q);
      if (!tables) return;
      if (collect) collect(tables);
      else await afterWrite(tables === "all" ? "all" : [...tables], !failed);
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
            await report(true, error);
            throw error;
          },
        );
        return settled.then(ok, fail);
      },
    });
    return q;
  };

  const wrap = (sql: Sql, collect?: (t: Tables) => void): Sql =>
    new Proxy(sql, {
      apply(target, self, args: unknown[]) {
        const result = Reflect.apply(target, self, args) as unknown;
        return isTemplate(args[0]) ? observe(result as PendingQuery<postgres.Row[]>, collect) : result;
      },
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== "function") return value;
        switch (prop) {
          case "unsafe":
          case "file":
            return (...args: unknown[]) =>
              observe((value as (...a: unknown[]) => PendingQuery<postgres.Row[]>).apply(target, args), collect);
          case "reserve":
            // A reserved connection: its statements are observed as the pool's are.
            return async (...args: unknown[]) =>
              wrap((await (value as (...a: unknown[]) => Promise<Sql>).apply(target, args)) as Sql, collect);
          case "begin":
          case "savepoint":
            return collect
              ? (...args: unknown[]) =>
                  (value as (...a: unknown[]) => unknown).apply(
                    target,
                    withScope(args, (s) => wrap(s, collect)),
                  )
              : (...args: unknown[]) => transaction(value as (...a: unknown[]) => Promise<unknown>, target, args);
          default:
            return value;
        }
      },
    }) as Sql;

  /** A top-level `begin`: its writes are reported after it ends (committed, or perhaps committed when it failed). */
  async function transaction(begin: (...a: unknown[]) => Promise<unknown>, target: Sql, args: unknown[]): Promise<unknown> {
    let tables: Tables | undefined;
    const collect = (t: Tables) => {
      if (tables === "all" || t === "all") tables = "all";
      else {
        const into: Set<string> = tables ?? new Set<string>();
        for (const name of t) into.add(name);
        tables = into;
      }
    };
    let failed = false;
    let failure: unknown;
    try {
      return await begin.apply(
        target,
        withScope(args, (s) => wrap(s, collect)),
      );
    } catch (error) {
      failed = true;
      failure = error;
      throw error;
    } finally {
      // A server error ended it in a rollback; any other end (a lost connection during COMMIT) may have committed.
      const rolledBack = failed && failure instanceof postgres.PostgresError;
      if (tables && !rolledBack) await afterWrite(tables === "all" ? "all" : [...tables], !failed);
    }
  }

  return wrap(pool);
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
