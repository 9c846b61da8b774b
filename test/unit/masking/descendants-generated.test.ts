/**
 * Lineage through inheritance children / partitions (a scan of a parent returns its descendants' rows)
 * and generated columns (computed from other columns of their row), with the engineers' rules on
 * public.customers (ssn, card_pan partial; email email-domain).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCatalog, type CatalogRows } from '../../../gateway/masking/catalog.js';
import { MaskingFilter } from '../../../gateway/masking/filter.js';
import { SessionMasking } from '../../../gateway/masking/index.js';
import { resolveMaskRules } from '../../../gateway/masking/rules.js';
import { decodeDataRow, encodeDataRow } from '../../../gateway/pgwire/backend.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { demoRows, ENGINEERS, planSql, policy, staticSource, TOKEN_KEY } from './helpers.js';

beforeAll(() => loadSqlParser());

const TEXT = '25';

/** The demo catalog plus: people (parent of customers), beings (parent of people), generated columns. */
function rows(): CatalogRows {
  const base = demoRows();
  const col = (oid: number, schema: string, name: string, kind: string, attnum: number, attname: string) => [
    String(oid),
    schema,
    name,
    kind,
    String(attnum),
    attname,
    TEXT,
    null,
  ];
  return {
    ...base,
    relations: [
      ...base.relations,
      // customers gains generated columns (attnums after its six)
      [...col(16001, 'public', 'customers', 'r', 7, 'ssn_digits'), 's', "replace(ssn, '-'::text, ''::text)"],
      [...col(16001, 'public', 'customers', 'r', 8, 'shout'), 's', 'upper(name)'],
      [...col(16001, 'public', 'customers', 'r', 9, 'mystery'), 's', null],
      col(16010, 'public', 'people', 'r', 1, 'name'),
      col(16010, 'public', 'people', 'r', 2, 'ssn'),
      col(16011, 'public', 'beings', 'r', 1, 'name'),
      col(16011, 'public', 'beings', 'r', 2, 'ssn'),
    ],
    inherits: [...base.inherits, ['16001', '16010'], ['16010', '16011']],
  };
}

const session = () =>
  new SessionMasking({ catalog: staticSource(buildCatalog(rows())), ctx: { tokenKey: TOKEN_KEY } });

async function masked(sql: string, policies = [ENGINEERS]): Promise<string[] | string> {
  const [plan] = await planSql(sql, policies, session());
  if (plan?.deny) return `deny:${plan.deny.rule}`;
  return (plan?.filter?.masked() ?? []).map((m) => `${m.column}:${m.mask}`);
}

describe('inheritance children and partitions', () => {
  it.each([
    ['select name, ssn from people', ['ssn:partial']],
    ['select * from people', ['ssn:partial']],
    ['table people', ['ssn:partial']],
    ['select p.ssn from customers c join people p using (name)', ['ssn:partial']],
    ['select lower(ssn) from people', ['lower:redact']],
    // transitively: beings <- people <- customers
    ['select ssn from beings', ['ssn:partial']],
    ['select name from people', []],
  ])('%s', async (sql, expected) => {
    expect(await masked(sql)).toEqual(expected);
  });

  it('a rule naming a partition masks the partitioned parent read', async () => {
    const partition = policy({
      name: 'p',
      masking: [{ name: 'part-ssn', columns: ['public.customers_2024.ssn'], mask: 'partial' }],
    });
    expect(await masked('select id, ssn from customers', [partition])).toEqual(['ssn:partial']);
    expect(await masked('select ssn from people', [partition])).toEqual(['ssn:partial']);
  });

  it('RowDescription naming the parent column (lineage missed it) still masks', () => {
    const f = new MaskingFilter({
      outputs: [{ name: 'x', lineage: { sources: new Set(), transformed: false, unknown: false } }],
      rules: resolveMaskRules([ENGINEERS], 'engineers'),
      ctx: { tokenKey: TOKEN_KEY },
      catalog: buildCatalog(rows()),
      redactMessages: false,
    });
    f.columns([
      { name: 'x', tableOid: 16010, columnNumber: 2, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 },
    ]);
    const out = f.dataRow(encodeDataRow([Buffer.from('000-12-3456')]).subarray(5), [0]);
    expect(decodeDataRow(out!.subarray(5)).map((v) => v?.toString())).toEqual(['*******3456']);
  });
});

describe('generated columns', () => {
  it.each([
    ['select ssn_digits from customers', ['ssn_digits:redact']],
    ['select shout from customers', []],
    // no expression known: derived from every other column of its table
    ['select mystery from customers', ['mystery:redact']],
    [
      'select * from customers',
      ['email:email-domain', 'ssn:partial', 'card_pan:partial', 'ssn_digits:redact', 'mystery:redact'],
    ],
    [
      'table customers',
      ['email:email-domain', 'ssn:partial', 'card_pan:partial', 'ssn_digits:redact', 'mystery:redact'],
    ],
  ])('%s', async (sql, expected) => {
    expect(await masked(sql)).toEqual(expected);
  });

  it('a quoted or substring-sharing name is matched as an identifier only', async () => {
    const base = rows();
    base.relations.push(
      ['16020', 'public', 't', 'r', '1', 'Secret', TEXT, null],
      ['16020', 'public', 't', 'r', '2', 'secretive', TEXT, null],
      ['16020', 'public', 't', 'r', '3', 'g1', TEXT, null, 's', 'lower("Secret")'],
      ['16020', 'public', 't', 'r', '4', 'g2', TEXT, null, 's', "(secretive || 'Secretx'::text)"],
    );
    const catalog = buildCatalog(base);
    const { columnLineage } = await import('../../../gateway/masking/lineage.js');
    const t = catalog.relation('public.t')!;
    const sources = (name: string) => [
      ...columnLineage(catalog, t, t.columns.find((c) => c.name === name)!).sources,
    ];
    expect(sources('g1').sort()).toEqual(['public.t.g1', 'public.t.secret']);
    expect(sources('g2').sort()).toEqual(['public.t.g2', 'public.t.secretive']);
  });

  it('COPY of the table leaves generated columns out (as PostgreSQL does); masked columns stay masked', async () => {
    const s = new SessionMasking({
      catalog: staticSource(buildCatalog(rows())),
      ctx: { tokenKey: TOKEN_KEY },
      copy: 'mask',
    });
    const [plan] = await planSql('copy customers to stdout', [ENGINEERS], s);
    expect(plan?.deny).toBeUndefined();
    const filter = plan!.filter!;
    expect(filter.masked().map((m) => `${m.column}:${m.mask}`)).toEqual([
      'email:email-domain',
      'ssn:partial',
      'card_pan:partial',
    ]);
    const out = filter.copyData(Buffer.from('1\tAda\tada@example.com\t000-12-3456\t4111111111111111\tUK\n'));
    expect(out!.subarray(5).toString()).toBe('1\tAda\t****@example.com\t*******3456\t411111******1111\tUK\n');
  });
});
