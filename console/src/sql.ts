/**
 * A small SQL tokenizer for display only: it colours what a reviewer reads and never decides anything
 * (the gateway classifies with the real PostgreSQL parser). Every character of the input ends up in
 * exactly one token, in order, so the text shown is always the text that was sent.
 */

export type TokenType = 'keyword' | 'string' | 'number' | 'comment' | 'identifier' | 'parameter' | 'text';

export interface Token {
  type: TokenType;
  text: string;
}

const KEYWORDS = new Set(
  `select from where and or not insert into values update set delete returning create alter drop table
  view index sequence schema database function procedure trigger type extension grant revoke to on as
  join left right full inner outer cross natural using group by order having limit offset fetch first
  next rows only distinct all union intersect except case when then else end is null true false in
  exists between like ilike similar any some begin commit rollback savepoint release transaction start
  work isolation level read write committed repeatable serializable with recursive copy stdin stdout
  truncate cascade restrict primary key foreign references unique check default constraint column add
  rename owner if replace temporary temp unlogged materialized refresh analyze explain verbose vacuum
  do language returns declare execute prepare deallocate listen notify lock share mode nowait for skip
  locked asc desc nulls last over partition window filter within lateral cast collate role user
  password login superuser security definer invoker set reset show session local authorization
  comment call conflict nothing excluded`
    .split(/\s+/)
    .filter(Boolean),
);

/** The end (exclusive) of a token of `kind` starting at `i`, or -1 if none starts there. */
type Scanner = (sql: string, i: number) => number;

const lineComment: Scanner = (sql, i) => {
  if (!sql.startsWith('--', i)) return -1;
  const end = sql.indexOf('\n', i);
  return end < 0 ? sql.length : end;
};

/** Block comments nest in PostgreSQL. */
const blockComment: Scanner = (sql, i) => {
  if (!sql.startsWith('/*', i)) return -1;
  let depth = 0;
  let j = i;
  while (j < sql.length) {
    if (sql.startsWith('/*', j)) {
      depth++;
      j += 2;
    } else if (sql.startsWith('*/', j)) {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else j++;
  }
  return sql.length;
};

/** 'text' with '' inside; E'text' also with backslash escapes. */
const quoted: Scanner = (sql, i) => {
  const backslashes = /[eE]/.test(sql[i] ?? '') && sql[i + 1] === "'";
  const start = backslashes ? i + 1 : i;
  if (sql[start] !== "'") return -1;
  let j = start + 1;
  while (j < sql.length) {
    if (backslashes && sql[j] === '\\') j += 2;
    else if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
    else if (sql[j] === "'") return j + 1;
    else j++;
  }
  return sql.length;
};

/** $$body$$ or $tag$body$tag$. */
const dollarQuoted: Scanner = (sql, i) => {
  const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
  if (!tag) return -1;
  const end = sql.indexOf(tag[0], i + tag[0].length);
  return end < 0 ? sql.length : end + tag[0].length;
};

const quotedIdentifier: Scanner = (sql, i) => {
  if (sql[i] !== '"') return -1;
  let j = i + 1;
  while (j < sql.length) {
    if (sql[j] === '"' && sql[j + 1] === '"') j += 2;
    else if (sql[j] === '"') return j + 1;
    else j++;
  }
  return sql.length;
};

const matchAt = (pattern: RegExp): Scanner => {
  const sticky = new RegExp(pattern.source, 'y');
  return (sql, i) => {
    sticky.lastIndex = i;
    return sticky.test(sql) ? sticky.lastIndex : -1;
  };
};

const parameter = matchAt(/\$\d+/);
const number = matchAt(/(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/);
const word = matchAt(/[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/);

const SCANNERS: [TokenType, Scanner][] = [
  ['comment', lineComment],
  ['comment', blockComment],
  ['string', quoted],
  ['parameter', parameter],
  ['string', dollarQuoted],
  ['identifier', quotedIdentifier],
  ['number', number],
];

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const push = (type: TokenType, text: string) => {
    const last = tokens.at(-1);
    if (last && last.type === type && type === 'text') last.text += text;
    else tokens.push({ type, text });
  };
  let i = 0;
  outer: while (i < sql.length) {
    for (const [type, scan] of SCANNERS) {
      const end = scan(sql, i);
      if (end > i) {
        push(type, sql.slice(i, end));
        i = end;
        continue outer;
      }
    }
    const end = word(sql, i);
    if (end > i) {
      const text = sql.slice(i, end);
      push(KEYWORDS.has(text.toLowerCase()) ? 'keyword' : 'text', text);
      i = end;
      continue;
    }
    push('text', sql[i]!);
    i++;
  }
  return tokens;
}
