import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CopyFormat,
  copyFormatOf,
  formatCopyRow,
  parseCopyRows,
} from '../../../gateway/masking/copy.js';
import type { MaskingFilter } from '../../../gateway/masking/filter.js';
import { SessionMasking } from '../../../gateway/masking/index.js';
import { loadSqlParser, parseSql } from '../../../gateway/sql/parser.js';
import { ENGINEERS, planSql, policy, staticSource, TOKEN_KEY } from './helpers.js';

beforeAll(() => loadSqlParser());

function optionsOf(sql: string): CopyFormat | undefined {
  const stmt = parseSql(sql).stmts?.[0]?.stmt as { CopyStmt: { options?: unknown } };
  return copyFormatOf(stmt.CopyStmt.options);
}

const TEXT: CopyFormat = {
  format: 'text',
  delimiter: '\t',
  quote: '"',
  escape: '"',
  null: '\\N',
  header: false,
};
const CSV: CopyFormat = { format: 'csv', delimiter: ',', quote: '"', escape: '"', null: '', header: false };

describe('COPY options from the parse tree', () => {
  it('defaults: text with tab and \\N, csv with comma, double quote and empty null', () => {
    expect(optionsOf('copy t to stdout')).toEqual(TEXT);
    expect(optionsOf('copy t to stdout with (format csv)')).toEqual(CSV);
  });

  it('reads delimiter, quote, escape, null and header in both syntaxes', () => {
    expect(
      optionsOf(
        `copy (select 1) to stdout with (format csv, header, delimiter ';', quote '''', escape '\\', null 'NULL')`,
      ),
    ).toEqual({ format: 'csv', delimiter: ';', quote: "'", escape: '\\', null: 'NULL', header: true });
    expect(optionsOf(`copy t to stdout with csv header delimiter as '|' null as 'x' force quote *`)).toEqual({
      format: 'csv',
      delimiter: '|',
      quote: '"',
      escape: '"',
      null: 'x',
      header: true,
    });
    expect(optionsOf('copy t to stdout (format text, header false)')?.header).toBe(false);
    expect(optionsOf('copy t to stdout binary')?.format).toBe('binary');
    expect(optionsOf('copy t to stdout (format binary)')?.format).toBe('binary');
  });

  it('gives up on options it cannot follow (another encoding)', () => {
    expect(optionsOf(`copy t to stdout (encoding 'LATIN1')`)).toBeUndefined();
    expect(optionsOf(`copy t to stdout (encoding 'UTF8')`)?.format).toBe('text');
  });
});

describe('COPY rows: parse and write back', () => {
  it('text: backslash escapes, \\N, embedded delimiters and newlines', () => {
    const line = '1\ta\\tb\\nc\\\\d\t\\N\tx\\\ty\n';
    const { rows } = parseCopyRows(line, TEXT);
    expect(rows).toEqual([['1', 'a\tb\nc\\d', null, 'x\ty']]);
    expect(formatCopyRow(rows[0]!, TEXT)).toBe('1\ta\\tb\\nc\\\\d\t\\N\tx\\ty\n');
    // Octal and hex escapes are read too.
    expect(parseCopyRows('\\101\\x42\\r\n', TEXT).rows).toEqual([['AB\r']]);
    // Several rows in one message; an empty string is not NULL.
    expect(parseCopyRows('a\t\nb\t\\N\n', TEXT).rows).toEqual([
      ['a', ''],
      ['b', null],
    ]);
    // A custom delimiter is escaped when a value holds it.
    const pipe = { ...TEXT, delimiter: '|' };
    expect(formatCopyRow(['a|b', 'c'], pipe)).toBe('a\\|b|c\n');
    expect(parseCopyRows('a\\|b|c\n', pipe).rows).toEqual([['a|b', 'c']]);
  });

  it('csv: quotes, doubled quotes, embedded delimiters and newlines, NULL vs empty string', () => {
    const data = '1,"a,b","say ""hi""","line1\nline2",,""\n';
    const { rows } = parseCopyRows(data, CSV);
    expect(rows).toEqual([['1', 'a,b', 'say "hi"', 'line1\nline2', null, '']]);
    expect(formatCopyRow(rows[0]!, CSV)).toBe(data);
    // A separate escape character.
    const esc = { ...CSV, escape: '\\' };
    expect(parseCopyRows('"a\\"b\\\\c",d\n', esc).rows).toEqual([['a"b\\c', 'd']]);
    expect(formatCopyRow(['a"b\\c', 'd'], esc)).toBe('"a\\"b\\\\c",d\n');
    // A custom null string: unquoted is NULL, quoted is the text.
    const nul = { ...CSV, null: 'NULL' };
    expect(parseCopyRows('NULL,"NULL"\n', nul).rows).toEqual([[null, 'NULL']]);
    expect(formatCopyRow([null, 'NULL'], nul)).toBe('NULL,"NULL"\n');
    // CRLF line endings are kept.
    expect(parseCopyRows('a,b\r\n', CSV)).toEqual({
      rows: [['a', 'b']],
      raws: [['a', 'b']],
      newline: '\r\n',
    });
  });
});

const MASK_COPY = () =>
  new SessionMasking({ catalog: staticSource(), ctx: { tokenKey: TOKEN_KEY }, copy: 'mask' });

async function copyFilter(sql: string, policies = [ENGINEERS]): Promise<MaskingFilter> {
  const [plan] = await planSql(sql, policies, MASK_COPY());
  expect(plan?.deny).toBeUndefined();
  expect(plan?.filter).toBeDefined();
  return plan!.filter!;
}

function copyOut(filter: MaskingFilter, payload: string): string {
  const message = filter.copyData(Buffer.from(payload, 'utf8'));
  expect(message).toBeDefined();
  expect(message![0]).toBe(0x64);
  expect(message!.readInt32BE(1)).toBe(message!.length - 1);
  return message!.subarray(5).toString('utf8');
}

describe('COPY TO STDOUT with masking.copy: mask', () => {
  it('is refused by default (masking.copy: deny) and for binary COPY even with mask', async () => {
    const [denied] = await planSql('copy customers to stdout');
    expect(denied?.deny?.rule).toBe('masking-copy');
    const [binary] = await planSql('copy customers to stdout (format binary)', [ENGINEERS], MASK_COPY());
    expect(binary?.deny?.rule).toBe('masking-copy');
    expect(binary?.deny?.reason).toMatch(/binary/);
  });

  it('masks a table COPY in text format, masked columns only, escapes kept right', async () => {
    const filter = await copyFilter('copy customers to stdout');
    expect(filter.masked().map((m) => `${m.column}:${m.mask}`)).toEqual([
      'email:email-domain',
      'ssn:partial',
      'card_pan:partial',
    ]);
    expect(copyOut(filter, '1\tAda\\tExample\tada@example.com\t000-12-3456\t4111111111111111\tUK\n')).toBe(
      '1\tAda\\tExample\t****@example.com\t*******3456\t411111******1111\tUK\n',
    );
    // NULL stays NULL; a masked value that keeps a backslash or tab is escaped again.
    expect(copyOut(filter, '2\tBo\t\\N\tabcde\\\\f\\th\t\\N\tDE\n')).toBe(
      '2\tBo\t\\N\t*****\\\\f\\th\t\\N\tDE\n',
    );
  });

  it('follows the column list order and the lineage of COPY (select ...)', async () => {
    const listed = await copyFilter('copy customers (ssn, id) to stdout');
    expect(copyOut(listed, '000-12-3456\t1\n')).toBe('*******3456\t1\n');
    const query = await copyFilter(
      'copy (select id, lower(ssn) as l, name as who, email from customers) to stdout with (format csv, header)',
    );
    // The header line passes as it is; a derived value of unknown type (COPY has no RowDescription)
    // becomes NULL (unquoted empty in csv); csv quoting is kept.
    expect(copyOut(query, 'id,l,who,email\n')).toBe('id,l,who,email\n');
    expect(copyOut(query, '1,000-12-3456,"Example, Ada","ada@example.com"\n')).toBe(
      '1,,"Example, Ada",****@example.com\n',
    );
    expect(copyOut(query, '2,,"say ""hi""\nthere",\n')).toBe('2,,"say ""hi""\nthere",\n');
  });

  it('csv with custom delimiter, quote, escape and null string', async () => {
    const filter = await copyFilter(
      `copy (select name, email from customers) to stdout with (format csv, delimiter ';', quote '''', escape '\\', null 'NULL')`,
    );
    expect(copyOut(filter, "'O\\'Brien; Ann';'ann@x.org'\n")).toBe("'O\\'Brien; Ann';****@x.org\n");
    expect(copyOut(filter, 'Ann;NULL\n')).toBe('Ann;NULL\n');
  });

  it('keeps the bytes of clear fields (FORCE_QUOTE) and re-encodes only masked ones', async () => {
    const filter = await copyFilter(
      'copy (select name, ssn, email from customers) to stdout with (format csv, force_quote *)',
    );
    expect(copyOut(filter, '"Ada","000-12-3456",""\n')).toBe('"Ada",*******3456,****\n');
    expect(parseCopyRows('"a",b,,""\n', CSV).raws).toEqual([['"a"', 'b', '', '""']]);
    expect(parseCopyRows('a\\tb\t\\N\n', TEXT).raws).toEqual([['a\\tb', '\\N']]);
  });

  it('masking_fallback: deny refuses a COPY of unknown lineage; mask redacts it', async () => {
    const strict = policy({ ...ENGINEERS, masking_fallback: 'deny' });
    const [denied] = await planSql('copy (select * from no_such_table) to stdout', [strict], MASK_COPY());
    expect(denied?.deny?.rule).toBe('masking-copy');
    const filter = await copyFilter('copy (select x from no_such_table) to stdout');
    expect(copyOut(filter, 'clear\n')).toBe('\\N\n');
  });
});
