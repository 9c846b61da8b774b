/**
 * The CLI's lexical statement splitter against the real parser: wherever the lexer says it is sure, it
 * must split exactly as libpg-query does; where it is not, exec falls back to the parser.
 */
import { describe, expect, it } from 'vitest';
import { splitSqlLexically, splitSqlScript, splitWithParser } from '../../../src/shared/sql-split.js';

const PIECES = [
  'select 1',
  "select 'a;b' as x",
  "select 'it''s; fine'",
  "select E'back\\\\slash \\' quote; still'",
  'select "we;ird" from (select 1 as "we;ird") t',
  'select $$ dollar ; quoted $$',
  'select $tag$ a $$ b ; c $tag$',
  'create function f() returns int language sql as $body$ select 1; select 2 $body$',
  'select 1 -- a comment; with a semicolon\n',
  'select /* a ; /* nested ; */ comment */ 2',
  'select $1::int',
  'select a$b from (select 1 as a$b) t',
  "select U&'d\\0061t\\+000061' as u",
  "insert into t values ('x'), ('y;z')",
  'do $$ begin perform 1; end $$',
  "select 'x' -- trailing ; comment\n",
  "select e'\\\\' as backslash",
  'select 1 as "a""b;c"',
  'begin',
  'commit',
];

const SCRIPTS: string[] = [
  ...PIECES,
  PIECES.join(';\n'),
  `${PIECES.join('; ')};`,
  `-- header comment\n${PIECES.slice(0, 6).join(';\n')};\n-- trailing only comment\n`,
  '  ;;  select 1;; ;select 2  ; ',
  '/* only a comment */',
  '',
  '   ',
  'select 1; /* c */ ; -- d\nselect 2',
];

describe('lexical split', () => {
  for (const [i, script] of SCRIPTS.entries()) {
    it(`agrees with the parser on script ${i}`, async () => {
      const lexed = splitSqlLexically(script);
      expect(lexed.sure).toBe(true);
      expect(lexed.statements).toEqual(await splitWithParser(script));
    });
  }

  it('is not sure about what only the parser can settle', () => {
    const unsure = [
      "select 'unterminated",
      'select $$ never closed',
      'select /* never closed',
      'create function f() returns int language sql begin atomic select 1; select 2; end',
      '\\set x 1\nselect :x',
      'select "unterminated',
    ];
    for (const script of unsure) expect(splitSqlLexically(script).sure, script).toBe(false);
  });

  it('falls back to the parser for BEGIN ATOMIC bodies', async () => {
    const script =
      'create function f() returns int language sql begin atomic select 1; select 2; end; select 3';
    expect(await splitSqlScript(script)).toEqual([
      'create function f() returns int language sql begin atomic select 1; select 2; end',
      'select 3',
    ]);
  });

  it('returns text the parser rejects whole (the gateway explains the error)', async () => {
    expect(await splitSqlScript("select 'oops")).toEqual(["select 'oops"]);
  });
});
