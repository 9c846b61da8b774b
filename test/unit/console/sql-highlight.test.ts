/** The console's SQL highlighter: display only, but it must never drop, add or reorder a character. */
import { describe, expect, it } from 'vitest';
import { tokenize } from '../../../console/src/sql.js';

const SAMPLES = [
  'select 1',
  "SELECT id, name FROM public.customers WHERE email = 'a''b@example.com' AND id > $1",
  "update t set v = E'it\\'s' -- trailing comment",
  'select /* outer /* nested */ still comment */ 2',
  'do $body$ begin raise notice $$x$$; end $body$',
  'select "Mixed ""Case"" Name" from "T"',
  'select 1.5e10, .5, 42::int',
  "select 'unterminated",
  '/* unterminated comment',
  'insert into ünïcødé_table values (1)',
  'select $tag$ never closed',
  '',
];

describe('tokenize', () => {
  it('keeps every character, in order', () => {
    for (const sql of SAMPLES)
      expect(
        tokenize(sql)
          .map((t) => t.text)
          .join(''),
      ).toBe(sql);
  });

  it('tells keywords, strings, numbers, comments, parameters and quoted names apart', () => {
    const kinds = (sql: string) =>
      tokenize(sql)
        .filter((t) => t.type !== 'text')
        .map((t) => [t.type, t.text]);
    expect(kinds("SELECT 'x' FROM t WHERE id = $1 -- hi")).toEqual([
      ['keyword', 'SELECT'],
      ['string', "'x'"],
      ['keyword', 'FROM'],
      ['keyword', 'WHERE'],
      ['parameter', '$1'],
      ['comment', '-- hi'],
    ]);
    expect(kinds('select "from" from x')).toEqual([
      ['keyword', 'select'],
      ['identifier', '"from"'],
      ['keyword', 'from'],
    ]);
    expect(kinds("select E'a\\'b', $$c$$, 3.14")).toEqual([
      ['keyword', 'select'],
      ['string', "E'a\\'b'"],
      ['string', '$$c$$'],
      ['number', '3.14'],
    ]);
  });

  it('does not colour keywords inside strings, comments or longer names', () => {
    const types = tokenize("selection 'select' /* select */ selected").map((t) => t.type);
    expect(types).not.toContain('keyword');
  });
});
