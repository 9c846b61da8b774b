import { describe, expect, it } from 'vitest';
import { MaskingFilter, redactMessageFields } from '../../../gateway/masking/filter.js';
import type { Lineage, Output } from '../../../gateway/masking/lineage.js';
import { resolveMaskRules } from '../../../gateway/masking/rules.js';
import { decodeDataRow, encodeDataRow, type FieldDescription } from '../../../gateway/pgwire/backend.js';
import { demoCatalog, ENGINEERS, policy, TOKEN_KEY } from './helpers.js';

const src = (id: string, transformed = false, typeOid?: number): Lineage => ({
  sources: new Set([id]),
  transformed,
  unknown: false,
  typeOid,
});
const CLEAR: Lineage = { sources: new Set(), transformed: false, unknown: false };

const rules = resolveMaskRules([ENGINEERS], 'engineers');
const ctx = { tokenKey: TOKEN_KEY };

function field(name: string, typeOid: number, format = 0, tableOid = 0, columnNumber = 0): FieldDescription {
  return { name, tableOid, columnNumber, typeOid, typeSize: -1, typeModifier: -1, format };
}

function row(values: (string | Buffer | null)[]): Buffer {
  return encodeDataRow(
    values.map((v) => (v === null ? null : typeof v === 'string' ? Buffer.from(v) : v)),
  ).subarray(5);
}

function values(message: Buffer | undefined): (string | null)[] {
  expect(message).toBeDefined();
  const body = message!.subarray(5);
  expect(message!.readInt32BE(1)).toBe(message!.length - 1); // the length field is right
  return decodeDataRow(body).map((v) => (v === null ? null : v.toString('utf8')));
}

describe('DataRow rewriting', () => {
  const outputs: Output[] = [
    { name: 'id', lineage: src('public.customers.id') },
    { name: 'ssn', lineage: src('public.customers.ssn', false, 25) },
    { name: 'pan', lineage: src('public.customers.card_pan', false, 25) },
    { name: 'country', lineage: src('public.customers.country') },
  ];

  it('masks the masked columns in text format and keeps the others byte-identical', () => {
    const f = new MaskingFilter({ outputs, rules, ctx, redactMessages: true });
    f.columns([field('id', 23), field('ssn', 25), field('pan', 25), field('country', 25)]);
    const out = f.dataRow(row(['1', '000-12-3456', '4111111111111111', 'GB']), [0, 0, 0, 0]);
    expect(values(out)).toEqual(['1', '*******3456', '411111******1111', 'GB']);
  });

  it('binary format: strings are UTF-8, other types become NULL, NULL stays NULL, lengths right', () => {
    const f = new MaskingFilter({
      outputs: [
        ...outputs,
        { name: 'n', lineage: src('public.customers.ssn', true) },
        { name: 'j', lineage: src('public.customers.email', true) },
      ],
      rules,
      ctx,
      redactMessages: true,
    });
    f.columns([
      field('id', 23, 1),
      field('ssn', 1043, 1),
      field('pan', 25, 1),
      field('country', 25, 1),
      field('n', 23, 1),
      field('j', 3802, 1),
    ]);
    const id = Buffer.alloc(4);
    id.writeInt32BE(7);
    const out = f.dataRow(
      row([
        id,
        '000-98-7654',
        null,
        'US',
        Buffer.from([0, 0, 0, 5]),
        Buffer.concat([Buffer.from([1]), Buffer.from('{"a":1}')]),
      ]),
      [1, 1, 1, 1, 1, 1],
    );
    const decoded = decodeDataRow(out!.subarray(5));
    expect(decoded[0]).toEqual(id);
    expect(decoded[1]!.toString()).toBe('*******7654');
    expect(decoded[2]).toBeNull();
    expect(decoded[3]!.toString()).toBe('US');
    expect(decoded[4]).toBeNull(); // an int derived from ssn: redacted means NULL
    expect(decoded[5]).toEqual(Buffer.concat([Buffer.from([1]), Buffer.from('"****"')]));
  });

  it('passes a row untouched (same bytes, no copy) when nothing is masked and no detectors are on', () => {
    const f = new MaskingFilter({
      outputs: [{ name: 'a', lineage: CLEAR }],
      rules,
      ctx,
      redactMessages: false,
    });
    expect(f.dataRow(row(['x']), [0])).toBeUndefined();
  });

  it('without RowDescription (extended protocol): type from the catalog for source columns, NULL for derived', () => {
    const f = new MaskingFilter({
      outputs: [
        { name: 'ssn', lineage: src('public.customers.ssn', false, 25) },
        { name: 'l', lineage: src('public.customers.ssn', true) },
      ],
      rules,
      ctx,
      redactMessages: true,
    });
    expect(values(f.dataRow(row(['000-12-3456', '000-12-3456']), [1, 0]))).toEqual(['*******3456', null]);
  });

  it('cross-checks RowDescription: a column the database says is customers.ssn is masked even if lineage missed it', () => {
    const catalog = demoCatalog();
    const f = new MaskingFilter({
      outputs: [{ name: 'x', lineage: CLEAR }],
      rules,
      ctx,
      catalog,
      redactMessages: false,
    });
    f.columns([field('x', 25, 0, 16001, 4)]);
    expect(values(f.dataRow(row(['000-12-3456']), [0]))).toEqual(['*******3456']);
  });

  it('unknown lineage: every column is masked whole; a column-count mismatch makes everything unknown', () => {
    const f = new MaskingFilter({ outputs: 'unknown', rules, ctx, redactMessages: true });
    f.columns([field('a', 25), field('b', 23)]);
    expect(values(f.dataRow(row(['secret', '5']), [0, 0]))).toEqual(['****', null]);
    const g = new MaskingFilter({
      outputs: [{ name: 'a', lineage: CLEAR }],
      rules,
      ctx,
      redactMessages: false,
    });
    g.columns([field('a', 25), field('b', 25)]);
    expect(values(g.dataRow(row(['x', 'y']), [0, 0]))).toEqual(['****', '****']);
  });

  it('open outputs (* over an unknown shape) fill the columns between known ones', () => {
    const f = new MaskingFilter({
      outputs: [
        { name: 'a', lineage: CLEAR },
        { name: '?', lineage: src('public.customers.ssn'), open: true },
        { name: 'z', lineage: CLEAR },
      ],
      rules,
      ctx,
      redactMessages: false,
    });
    f.columns([field('a', 25), field('b', 25), field('c', 25), field('z', 25)]);
    expect(values(f.dataRow(row(['a', '000-12-3456', '000-98-7654', 'z']), [0, 0, 0, 0]))).toEqual([
      'a',
      '*******3456',
      '*******7654',
      'z',
    ]);
  });

  it('detectors mask sensitive values in columns lineage left clear', () => {
    const withTags = resolveMaskRules(
      [policy({ name: 'p', masking: [{ tags: ['pan', 'ssn'], mask: 'redact' }] })],
      'p',
    );
    const f = new MaskingFilter({
      outputs: [{ name: 'note', lineage: CLEAR }],
      rules: withTags,
      ctx,
      redactMessages: false,
    });
    f.columns([field('note', 25)]);
    expect(values(f.dataRow(row(['card 4111111111111111 ssn 123-45-6789']), [0]))).toEqual([
      'card **** ssn ****',
    ]);
    expect(f.dataRow(row(['plain']), [0])).toBeUndefined();
  });

  it('evidence: which columns were masked, by which rule and why', () => {
    const f = new MaskingFilter({ outputs, rules, ctx, redactMessages: true });
    expect(f.masked()).toEqual([
      {
        column: 'ssn',
        position: 2,
        mask: 'partial',
        rule: 'ssn-partial',
        policy: 'engineers',
        why: 'lineage',
        sources: ['public.customers.ssn'],
      },
      {
        column: 'pan',
        position: 3,
        mask: 'partial',
        rule: 'pan-partial',
        policy: 'engineers',
        why: 'lineage',
        sources: ['public.customers.card_pan'],
      },
    ]);
  });
});

describe('error and notice redaction', () => {
  it('withholds the message text, detail, hint, context and internal query; keeps SQLSTATE and names', () => {
    const out = redactMessageFields({
      S: 'ERROR',
      C: '22P02',
      M: 'invalid input syntax for type integer: "000-12-3456"',
      D: 'Key (ssn)=(000-12-3456) already exists.',
      H: 'value 000-12-3456',
      W: 'COPY customers, line 1, column ssn: "000-12-3456"',
      q: "select '000-12-3456'",
      P: '8',
      t: 'customers',
    });
    expect(out).toEqual({
      S: 'ERROR',
      C: '22P02',
      M: 'hoop: message withheld because the statement reads masked columns (SQLSTATE 22P02, data exception)',
      D: 'hoop: detail withheld because the statement reads masked columns',
      P: '8',
      t: 'customers',
    });
  });

  it('leaves nothing of a value that would defeat redacting inside the text', () => {
    // A value holding the quote that ends a quoted span, and messages that print numbers unquoted.
    for (const M of [
      'invalid input syntax for type integer: ""000.12.3456""',
      'index 1000123456 out of valid range, 0..0',
      'date field value out of range: 456789-13-01',
    ]) {
      const out = redactMessageFields({ S: 'ERROR', C: '2202E', M });
      expect(out.M).toBe(
        'hoop: message withheld because the statement reads masked columns (SQLSTATE 2202E, data exception)',
      );
    }
    expect(redactMessageFields({ M: 'x' }).M).toBe(
      'hoop: message withheld because the statement reads masked columns',
    );
  });

  it('only when the statement reads masked data', () => {
    const f = new MaskingFilter({ outputs: [], rules, ctx, redactMessages: false });
    expect(f.message({ M: 'x "y"' })).toBeUndefined();
  });
});
