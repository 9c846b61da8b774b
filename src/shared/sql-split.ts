/**
 * Split a SQL script into its statements, so `hoopctl exec -f` runs and reports statement by statement
 * as psql does. A small lexer that knows PostgreSQL's quoting does it without loading anything: single
 * quotes (with '' and, in E'...', backslash escapes), double-quoted identifiers, dollar quotes ($$, $tag$),
 * -- and nested /* *\/ comments. Where it is not sure — an unterminated quote or comment, a SQL-standard
 * function body (BEGIN ATOMIC ... END, whose semicolons do not end the statement), a psql backslash
 * command — it hands the script to the real parser (libpg-query, WASM, loaded only then). Text the
 * parser rejects is returned whole: the gateway refuses it with the parser's message.
 *
 * This only decides where statements end; what they are is decided by the gateway's parser, never here.
 */

export interface LexicalSplit {
  statements: string[];
  /** false when the lexer met something only the parser can settle. */
  sure: boolean;
}

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

export function splitSqlLexically(sql: string): LexicalSplit {
  const statements: string[] = [];
  let start = 0;
  let hasCode = false; // the current statement has something besides whitespace and comments
  let previousWord = '';
  let sure = true;
  let i = 0;
  const n = sql.length;
  const endStatement = (end: number) => {
    const text = sql.slice(start, end).trim();
    if (hasCode && text) statements.push(text);
    start = end + 1;
    hasCode = false;
  };
  while (i < n) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
      continue;
    }
    if (ch === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      if (depth > 0) sure = false;
      continue;
    }
    const afterIdent = i > 0 && IDENT_CHAR.test(sql[i - 1]!);
    if (ch === "'") {
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && !(i > 1 && IDENT_CHAR.test(sql[i - 2]!));
      i = skipQuoted(sql, i + 1, "'", escapes);
      if (i < 0) return { statements: [sql.trim()].filter(Boolean), sure: false };
      hasCode = true;
      previousWord = '';
      continue;
    }
    if (ch === '"') {
      i = skipQuoted(sql, i + 1, '"', false);
      if (i < 0) return { statements: [sql.trim()].filter(Boolean), sure: false };
      hasCode = true;
      previousWord = '';
      continue;
    }
    if (ch === '$' && !afterIdent) {
      const tag = TAG.exec(sql.slice(i, i + 66));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        if (close < 0) return { statements: [sql.trim()].filter(Boolean), sure: false };
        i = close + tag[0].length;
        hasCode = true;
        previousWord = '';
        continue;
      }
    }
    if (ch === '\\' && !hasCode) sure = false; // a psql meta-command: not SQL
    if (ch === ';') {
      endStatement(i);
      i++;
      previousWord = '';
      continue;
    }
    if (/[A-Za-z_]/.test(ch) && !afterIdent) {
      let j = i + 1;
      while (j < n && IDENT_CHAR.test(sql[j]!)) j++;
      const word = sql.slice(i, j).toLowerCase();
      if (word === 'atomic' && previousWord === 'begin') sure = false;
      previousWord = word;
      hasCode = true;
      i = j;
      continue;
    }
    if (!/\s/.test(ch)) {
      hasCode = true;
      previousWord = '';
    }
    i++;
  }
  endStatement(n);
  return { statements, sure };
}

/** Index after the closing quote, or -1 when the quote never closes. */
function skipQuoted(sql: string, from: number, quote: string, backslashEscapes: boolean): number {
  let i = from;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (backslashEscapes && ch === '\\') {
      i += 2;
      continue;
    }
    if (ch === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return -1;
}

let loaded: Promise<typeof import('libpg-query')> | undefined;

/** Statements of a script: the lexer's split when it is sure, the real parser's otherwise. */
export async function splitSqlScript(sql: string): Promise<string[]> {
  const lexed = splitSqlLexically(sql);
  if (lexed.sure) return lexed.statements;
  return splitWithParser(sql);
}

/** The real parser's split (also what the lexer is tested against). */
export async function splitWithParser(sql: string): Promise<string[]> {
  loaded ??= import('libpg-query').then(async (m) => {
    await m.loadModule();
    return m;
  });
  const { parseSync } = await loaded;
  let result: { stmts?: { stmt_location?: number; stmt_len?: number }[] };
  try {
    result = parseSync(sql) as typeof result;
  } catch {
    return sql.trim() ? [sql] : [];
  }
  const bytes = Buffer.from(sql, 'utf8');
  const out: string[] = [];
  for (const s of result.stmts ?? []) {
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len ? start + s.stmt_len : bytes.length;
    const text = bytes.toString('utf8', start, end).trim();
    if (text) out.push(text);
  }
  return out;
}
