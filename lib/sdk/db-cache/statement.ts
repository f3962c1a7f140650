/**
 * What a SQL text does to tables, for the read cache's invalidation: which tables a statement writes, or that it
 * may write anything (DDL, CALL, DO, a table name the text does not show). Reads are not parsed here: the cache
 * asks PostgreSQL which relations a cached read scans (EXPLAIN), which sees through views.
 *
 * A small tokenizer rather than a SQL parser: it only has to find the target of INSERT/UPDATE/DELETE/MERGE/
 * TRUNCATE/COPY ... FROM in each statement, and every doubt answers "all tables", which costs misses, never a
 * stale row. What it cannot see: writes made by functions or triggers a statement calls (a `select f()` that
 * inserts); cached reads of such tables are bounded by their max age only (docs/database.md says so).
 */

/** What a statement does to tables: nothing (a read or a session command), writes these, or may write any. */
export type Effect = { kind: "none" } | { kind: "write"; tables: string[] } | { kind: "all" };

/** Statements whose first word says they write nothing (reads, transaction control, session settings). */
const HARMLESS = new Set([
  "select",
  "values",
  "table",
  "show",
  "explain",
  "begin",
  "start",
  "commit",
  "end",
  "rollback",
  "abort",
  "savepoint",
  "release",
  "set",
  "reset",
  "listen",
  "unlisten",
  "notify",
  "discard",
  "deallocate",
  "fetch",
  "move",
  "close",
  "declare",
  "lock",
  "prepare",
  "vacuum",
  "analyze",
  "checkpoint",
]);

/** First words of statements that write a table named after them (others that are not HARMLESS: all tables). */
const DML = new Set(["insert", "update", "delete", "merge", "truncate", "copy", "with"]);

type Token = { t: "word"; v: string } | { t: "name"; v: string } | { t: "punct"; v: string } | { t: "other" } | { t: "unterminated" };

/**
 * Tokens of a SQL text: words lower-cased, quoted names as written; strings, comments and numbers dropped. A string,
 * quoted name, comment or dollar quote that never ends gives an "unterminated" token: the text cannot be read.
 */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i] as string;
    if (/\s/.test(ch)) i++;
    else if (ch === "-" && text[i + 1] === "-") {
      const end = text.indexOf("\n", i);
      i = end < 0 ? n : end + 1;
    } else if ((ch === "e" || ch === "E") && text[i + 1] === "'" && !/[A-Za-z0-9_$]/.test(text[i - 1] ?? "")) {
      // E'...': backslash escapes, so \' does not end it.
      i = skipQuoted(text, i + 1, "'", true);
      out.push(i > n ? { t: "unterminated" } : { t: "other" });
    } else if (ch === "/" && text[i + 1] === "*") {
      let depth = 1; // PostgreSQL's block comments nest
      i += 2;
      while (i < n && depth > 0) {
        if (text[i] === "/" && text[i + 1] === "*") {
          depth++;
          i += 2;
        } else if (text[i] === "*" && text[i + 1] === "/") {
          depth--;
          i += 2;
        } else i++;
      }
      if (depth > 0) out.push({ t: "unterminated" });
    } else if (ch === "'") {
      i = skipQuoted(text, i, "'");
      out.push(i > n ? { t: "unterminated" } : { t: "other" });
    } else if (ch === '"') {
      const end = skipQuoted(text, i, '"');
      out.push(end > n ? { t: "unterminated" } : { t: "name", v: text.slice(i + 1, end - 1).replaceAll('""', '"') });
      i = end;
    } else if (ch === "$") {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
      if (tag) {
        const end = text.indexOf(tag[0], i + tag[0].length); // dollar-quoted string
        if (end < 0) out.push({ t: "unterminated" });
        i = end < 0 ? n : end + tag[0].length;
      } else {
        i++;
        while (i < n && /[0-9]/.test(text[i] as string)) i++;
      }
      out.push({ t: "other" }); // a parameter or a string: never a table name the text shows
    } else if (/[A-Za-z_\u0080-\uffff]/.test(ch)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(text[j] as string)) j++;
      out.push({ t: "word", v: text.slice(i, j).toLowerCase() });
      i = j;
    } else if (/[0-9]/.test(ch)) {
      while (i < n && /[0-9.eE]/.test(text[i] as string)) i++;
      out.push({ t: "other" });
    } else {
      out.push({ t: "punct", v: ch });
      i++;
    }
  }
  return out;
}

/** The index after the quote that closes the one at `start` (a doubled quote is one character), or past the end. */
function skipQuoted(text: string, start: number, quote: string, backslashes = false): number {
  let i = start + 1;
  while (i < text.length) {
    if (backslashes && text[i] === "\\") i += 2;
    else if (text[i] === quote) {
      if (text[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return text.length + 1;
}

/** A relation name at `at` (optionally schema-qualified; the last part counts), or undefined. */
function nameAt(tokens: Token[], at: number): { name: string; next: number } | undefined {
  let i = at;
  let name: string | undefined;
  for (;;) {
    const tok = tokens[i];
    if (!tok || (tok.t !== "word" && tok.t !== "name")) return name === undefined ? undefined : { name, next: i };
    name = tok.v;
    i++;
    const dot = tokens[i];
    if (!(dot?.t === "punct" && dot.v === ".")) return { name, next: i };
    i++;
  }
}

const isWord = (tok: Token | undefined, ...words: string[]): boolean => tok?.t === "word" && words.includes(tok.v);

/** The tables a statement's text writes, "all" when it may write any, nothing for a read. */
export function statementEffect(text: string): Effect {
  const tokens = tokenize(text);
  if (tokens.some((t) => t.t === "unterminated")) return { kind: "all" };
  const tables = new Set<string>();
  let statementStart = true;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as Token;
    if (tok.t === "punct" && tok.v === ";") {
      statementStart = true;
      continue;
    }
    if (statementStart) {
      if (tok.t === "punct" && tok.v === "(") continue; // (select ...) union ...
      statementStart = false;
      if (tok.t !== "word") return { kind: "all" };
      if (!HARMLESS.has(tok.v) && !DML.has(tok.v)) return { kind: "all" }; // create, alter, drop, call, do, grant ...
      // COMMIT PREPARED ends a transaction prepared earlier: what it wrote is not in this text.
      if (tok.v === "commit" && isWord(tokens[i + 1], "prepared")) return { kind: "all" };
      // A plain EXPLAIN of a write is scanned like the write (over-invalidation, safe); EXPLAIN ANALYZE runs it.
    }
    if (tok.t !== "word") continue;
    const target = writeTarget(tokens, i);
    if (target === "all") return { kind: "all" };
    if (target) for (const t of target) tables.add(t);
  }
  return tables.size === 0 ? { kind: "none" } : { kind: "write", tables: [...tables] };
}

/** The tables written by the DML keyword at `i`, "all" when the target is not a name the text shows, else none. */
function writeTarget(tokens: Token[], i: number): string[] | "all" | undefined {
  const word = (tokens[i] as { v: string }).v;
  const prev = tokens[i - 1];
  const after = (at: number, ...skip: string[]): string[] | "all" => {
    let j = at;
    while (isWord(tokens[j], ...skip)) j++;
    const found = nameAt(tokens, j);
    return found ? [found.name] : "all";
  };
  switch (word) {
    case "insert":
      return isWord(tokens[i + 1], "into") ? after(i + 2) : undefined;
    case "merge":
      return isWord(tokens[i + 1], "into") ? after(i + 2, "only") : undefined;
    case "delete":
      return isWord(tokens[i + 1], "from") ? after(i + 2, "only") : undefined;
    case "update": {
      // Not a write target: FOR [NO KEY] UPDATE (row locks), ON CONFLICT DO UPDATE SET, ON UPDATE (FK actions).
      if (isWord(prev, "for", "key", "do", "on")) return undefined;
      if (isWord(tokens[i + 1], "set")) return undefined;
      return after(i + 1, "only");
    }
    case "truncate": {
      // CASCADE empties the tables that reference these too: which ones, the text does not say.
      if (
        tokens
          .slice(i + 1)
          .some((t, k) => isWord(t, "cascade") && !tokens.slice(i + 1, i + 1 + k).some((x) => x.t === "punct" && x.v === ";"))
      )
        return "all";
      let j = i + 1;
      while (isWord(tokens[j], "table", "only")) j++;
      const names: string[] = [];
      for (;;) {
        while (isWord(tokens[j], "only")) j++;
        const found = nameAt(tokens, j);
        if (!found) return names.length > 0 ? names : "all";
        names.push(found.name);
        j = found.next;
        if (!(tokens[j]?.t === "punct" && (tokens[j] as { v: string }).v === ",")) return names;
        j++;
      }
    }
    case "copy": {
      // COPY t FROM writes t; COPY t TO and COPY (query) TO read.
      const found = nameAt(tokens, i + 1);
      if (!found) return undefined;
      let j = found.next;
      if (tokens[j]?.t === "punct" && (tokens[j] as { v: string }).v === "(") {
        while (j < tokens.length && !(tokens[j]?.t === "punct" && (tokens[j] as { v: string }).v === ")")) j++;
        j++;
      }
      return isWord(tokens[j], "from") ? [found.name] : undefined;
    }
    default:
      return undefined;
  }
}

/** Names after FROM and JOIN in a read's text (the part of its tables the text shows; see the host cache). */
export function readNames(text: string): string[] {
  const tokens = tokenize(text);
  const names = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    if (!isWord(tokens[i], "from", "join")) continue;
    let j = i + 1;
    while (isWord(tokens[j], "only", "lateral")) j++;
    const found = nameAt(tokens, j);
    if (found && !(tokens[found.next]?.t === "punct" && (tokens[found.next] as { v: string }).v === "(")) names.add(found.name);
  }
  return [...names];
}
