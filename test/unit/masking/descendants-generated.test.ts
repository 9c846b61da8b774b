/**
 * Lineage through inheritance children / partitions (a scan of a parent returns its descendants' rows),
 * with the engineers' rules on
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

/** The demo catalog plus: people (parent of customers), beings (parent of people). */
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
