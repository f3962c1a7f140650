// What a statement writes, as the read cache's invalidation sees it (lib/sdk/db-cache/statement.ts): every doubt
// must answer "all", never "none".
import { describe, expect, it } from "vitest";
import { readNames, statementEffect } from "../../lib/sdk/db-cache/statement.ts";

const tables = (text: string) => {
  const e = statementEffect(text);
  return e.kind === "write" ? [...e.tables].sort() : e.kind;
};

describe("statementEffect", () => {
  it("finds the table each kind of write names", () => {
    expect(tables("insert into links (code, url) values ($1, $2)")).toEqual(["links"]);
    expect(tables("INSERT INTO public.Links values (1)")).toEqual(["links"]);
    expect(tables('insert into "Mixed Case" values (1)')).toEqual(["Mixed Case"]);
    expect(tables("update only links set url = $1 where code = $2")).toEqual(["links"]);
    expect(tables("delete from links where id = $1 returning id")).toEqual(["links"]);
    expect(tables("merge into only stock s using arrivals a on s.id = a.id when matched then update set n = s.n + a.n")).toEqual(["stock"]);
    expect(tables("truncate table a, b.c, only d")).toEqual(["a", "c", "d"]);
    expect(tables("copy items from stdin")).toEqual(["items"]);
  });

  it("sees writes inside a WITH and in every statement of a text", () => {
    expect(tables("with moved as (delete from inbox returning *) insert into archive select * from moved")).toEqual(["archive", "inbox"]);
    expect(tables("update a set x = 1; update b set y = 2")).toEqual(["a", "b"]);
  });

  it("takes reads, locks and upserts' clauses for what they are", () => {
    expect(tables("select * from links where code = $1")).toBe("none");
    expect(tables("select * from links for update")).toBe("none");
    expect(tables("select * from links for no key update skip locked")).toBe("none");
    expect(tables("insert into t values (1) on conflict (id) do update set n = t.n + 1")).toEqual(["t"]);
    expect(tables("(select 1) union (select 2)")).toBe("none");
    expect(tables("begin; commit")).toBe("none");
    expect(tables("copy items to stdout")).toBe("none");
  });

  it("ignores what is in strings, quoted names and comments", () => {
    expect(tables("select 'insert into x' as s -- delete from y\n from t")).toBe("none");
    expect(tables("select $$ update z set a = 1 $$, /* truncate q /* nested */ still */ 1")).toBe("none");
    // E'' strings take backslash escapes: the quote after the backslash does not end them.
    expect(tables("with c as (select E'\\'' as q) update t set a = 1")).toEqual(["t"]);
    expect(tables("insert into log values (E'a\\'b'); update counters set n = 1")).toEqual(["counters", "log"]);
  });

  it("answers all when a string, name, comment or dollar quote never ends", () => {
    expect(tables("select 'x; update t set a = 1")).toBe("all");
    expect(tables('select "x; update t set a = 1')).toBe("all");
    expect(tables("select 1 /* update t set a = 1")).toBe("all");
    expect(tables("select $q$ update t set a = 1")).toBe("all");
  });

  it("answers all when the text does not show what is written", () => {
    expect(tables("create table x (id int)")).toBe("all");
    expect(tables("alter table links add column n int")).toBe("all");
    expect(tables("call refresh_everything()")).toBe("all");
    expect(tables("do $$ begin delete from x; end $$")).toBe("all");
    expect(tables("insert into $1 values (1)")).toBe("all");
    expect(tables("truncate")).toBe("all");
    expect(tables("$1")).toBe("all");
    expect(tables("select 1; drop table links")).toBe("all");
    expect(tables("truncate a cascade")).toBe("all");
    expect(tables("commit prepared 'tx1'")).toBe("all");
  });
});

describe("readNames", () => {
  it("names what follows FROM and JOIN, not functions or subqueries", () => {
    expect(readNames("select * from a join public.b on a.id = b.id left join lateral (select 1) s on true").sort()).toEqual(["a", "b"]);
    expect(readNames("select * from generate_series(1, 3)")).toEqual([]);
    expect(readNames("select * from (select * from inner_t) x")).toEqual(["inner_t"]);
  });
});
