/**
 * Code the gateway cannot see that runs without a function call in the text: operators and casts
 * backed by user functions, types whose own code is the user's, implicit casts, and EXPLAIN of
 * statements whose lineage is not clear. For the engineers (ssn, card_pan partial; email
 * email-domain) and for a guarded identity (inference guard, fallback deny).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCatalog, type CatalogRows } from '../../../gateway/masking/catalog.js';
import { SessionMasking } from '../../../gateway/masking/index.js';
import { SessionModel } from '../../../gateway/session/session-model.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { demoRows, ENGINEERS, planSql, policy, staticSource, TOKEN_KEY } from './helpers.js';

beforeAll(() => loadSqlParser());

type Tweak = (rows: CatalogRows) => CatalogRows;

/** A type row: oid, schema, name, own code, cast into it runs user code, the types it is made of. */
const type = (oid: number, name: string, own: boolean, castInto: boolean, inner = '') => [
  String(oid),
  'public',
  name,
  own ? 't' : 'f',
  castInto ? 't' : 'f',
  inner,
];

/**
 * The demo catalog plus what an admin created: `###` over lookup_ssn, `wrapped` (a cast from int runs a
 * user function), `checked` (a domain whose CHECK calls one), `pair` (a composite holding a `checked`),
 * the table gadgets (g pair), and `pg_catalog.sneaky` (a user function a superuser put in pg_catalog).
 */
function adminRows(): CatalogRows {
  const base = demoRows();
  return {
    ...base,
    relations: [...base.relations, ['16100', 'public', 'gadgets', 'r', '1', 'g', '16203', null]],
    functions: [...base.functions, ['lookup_ssn', 'f', 't'], ['sneaky', 'f', 'f']],
    operators: [...(base.operators ?? []), ['###', 'f']],
    types: [
      ...(base.types ?? []),
      type(16201, 'wrapped', false, true),
      type(16202, 'checked', true, false, '23'),
      type(16203, 'pair', false, false, '23,16202'),
      type(16204, '_checked', false, false, '16202'),
    ],
  };
}

const sessionOf = (rows: CatalogRows) =>
  new SessionMasking({ catalog: staticSource(buildCatalog(rows)), ctx: { tokenKey: TOKEN_KEY } });

const GUARDED = policy({
  name: 'guarded',
  inference_guard: true,
  masking_fallback: 'deny',
  masking: [{ name: 'ssn', columns: ['public.customers.ssn'], mask: 'redact' }],
});

async function masked(sql: string, rows = adminRows(), policies = [ENGINEERS]) {
  const [plan] = await planSql(sql, policies, sessionOf(rows));
  if (plan?.deny) return `deny:${plan.deny.rule}`;
  return (plan?.filter?.masked() ?? []).map((m) => `${m.column}:${m.mask}`);
}

const guarded = (sql: string, rows = adminRows()) => masked(sql, rows, [GUARDED]);

/** The admin catalog where `tweak` also holds. */
const withAdmin = (tweak: Tweak) => tweak(adminRows());

describe('operators backed by user functions', () => {
  it.each([
    ['select 1 ### 0', ['?column?:redact']],
    ['select 1 operator(public.###) 0', ['?column?:redact']],
    ['select 1 operator(pg_catalog.###) 0', ['?column?:redact']],
    // Not in the snapshot (created around the gateway since the load): unknown, not clear.
    ['select 1 %%% 0', ['?column?:redact']],
    ['select (select 1 ### 0) as x', ['x:redact']],
    ['select 1 = 0, 2 + 2, name from customers', []],
  ])('%s', async (sql, expected) => {
    expect(await masked(sql)).toEqual(expected);
  });

  it('a user operator in a predicate, ORDER BY USING or a join is of unknown lineage (guard, deny)', async () => {
    expect(await guarded("select name from customers where (id ### 0) = 'x'")).toBe('deny:inference-guard');
    expect(await guarded('select name from customers order by id using ###')).toBe('deny:inference-guard');
    expect(await guarded('select a.name from customers a join orders o on a.id ### o.id is null')).toBe(
      'deny:inference-guard',
    );
    expect(await guarded('select name from customers where id = 1 order by id using <')).toEqual([]);
  });

  it('a user operator named like a built-in one: every form that runs it (= ANY, IN, DISTINCT, NULLIF, BETWEEN)', async () => {
    const rows = withAdmin((r) => ({ ...r, operators: [...(r.operators ?? []), ['=', 'f'], ['<=', 'f']] }));
    for (const sql of [
      'select id = 1 from orders',
      "select id = any('{1,2}') from orders",
      'select id in (1, 2) from orders',
      'select id is distinct from 1 from orders',
      'select nullif(id, 1) from orders',
      'select id between 1 and 2 from orders',
      'select id in (select 1) from orders',
    ]) {
      expect(await masked(sql, rows), sql).toEqual(['?column?:redact']);
    }
    expect(
      await guarded('select name from customers where id in (select customer_id from orders)', rows),
    ).toBe('deny:inference-guard');
    expect(await masked('select id > 1 from orders', rows)).toEqual([]);
  });
});

describe("casts and types whose code is the user's", () => {
  it.each([
    ['select 1::wrapped as w', ['w:redact']],
    ['select cast(1 as wrapped) as w', ['w:redact']],
    ["select wrapped '1' as w", ['w:redact']],
    ['select 1::public.wrapped as w', ['w:redact']],
    ["select '1'::checked as c", ['c:redact']],
    ["select '{1}'::checked[] as c", ['c:redact']],
    ["select '{1}'::_checked as c", ['c:redact']],
    ["select '(1,1)'::pair as p", ['p:redact']],
    ['select 1::brand_new_type as b', ['b:redact']],
    ["select * from json_to_record('{}') as r(a checked)", ['a:redact']],
    // A column of a type whose code is the user's: reading it runs that code.
    ['select g from gadgets', ['g:redact']],
    ['select 1::int as i, 1::text as t, now()::timestamptz as n', []],
  ])('%s', async (sql, expected) => {
    expect(await masked(sql)).toEqual(expected);
  });

  it('a cast into a built-in type that runs a user function taints every cast to that type', async () => {
    const rows = withAdmin((r) => ({
      ...r,
      types: (r.types ?? []).map((t) => (t[2] === 'text' ? [...t.slice(0, 4), 't', ''] : t)),
    }));
    expect(await masked('select id::text as t from orders', rows)).toEqual(['t:redact']);
    expect(await masked('select id::int as i from orders', rows)).toEqual([]);
  });

  it("a parameter may be of such a type (its type is the client's choice)", async () => {
    expect(await masked('select $1 as p')).toEqual(['p:redact']);
    expect(await masked('select $1 as p', demoRows())).toEqual([]);
  });

  it('an implicit or assignment cast running user code: any expression that combines values', async () => {
    const rows = withAdmin((r) => ({ ...r, implicitCasts: [['1']] }));
    expect(await masked('select upper(name) as u, name from customers', rows)).toEqual(['u:redact']);
    expect(await masked("select name from customers union select 'x'", rows)).toEqual(['name:redact']);
    expect(await masked('select * from (values (1), (2)) v(a)', rows)).toEqual(['a:redact']);
    expect(await masked('select id, name from customers', rows)).toEqual([]);
    expect(await guarded('select name from customers where id = 1', rows)).toBe('deny:inference-guard');
    expect(await masked('select upper(name) as u from customers')).toEqual([]);
  });

  it('a user function a superuser put in pg_catalog is not built in', async () => {
    expect(await masked('select pg_catalog.sneaky(1) as s')).toEqual(['s:redact']);
    expect(await masked('select pg_catalog.lower(name) as l from customers')).toEqual([]);
  });

  it('statements running user code get their errors withheld', async () => {
    const [plan] = await planSql('select 1 ### 0', [ENGINEERS], sessionOf(adminRows()));
    expect(plan?.filter?.message({ S: 'ERROR', C: 'P0001', M: '000-12-3456' })?.M).not.toContain('000-12');
    const [cast] = await planSql("select '1'::checked", [ENGINEERS], sessionOf(adminRows()));
    expect(cast?.filter?.message({ S: 'ERROR', C: 'P0001', M: '000-12-3456' })?.M).not.toContain('000-12');
  });
});

describe('EXPLAIN for an identity with masking rules', () => {
  it.each([
    ['explain select name, country from customers', []],
    ['explain (analyze, verbose) select o.id from orders o join customers c on c.id = o.customer_id', []],
    ['explain select ssn from customers', 'deny:masking-explain'],
    ["explain select name from customers where ssn like '000-12%'", 'deny:masking-explain'],
    ['explain verbose select leak(1)', 'deny:masking-explain'],
    ["explain select id from orders where leak(id) = 'x'", 'deny:masking-explain'],
    ['explain (format json) select 1 ### 0', 'deny:masking-explain'],
    ['explain select 1::wrapped', 'deny:masking-explain'],
    ['explain select * from not_in_catalog', 'deny:masking-explain'],
    ['explain select * from customer_view', 'deny:masking-explain'],
  ])('%s', async (sql, expected) => {
    expect(await masked(sql)).toEqual(expected);
  });

  it('EXPLAIN EXECUTE judges what the prepared statement runs', async () => {
    const s = sessionOf(adminRows());
    const model = new SessionModel();
    await planSql('prepare masked as select ssn from customers', [ENGINEERS], s, undefined, model);
    await planSql('prepare plain as select name from customers', [ENGINEERS], s, undefined, model);
    const rule = async (sql: string) =>
      (await planSql(sql, [ENGINEERS], s, undefined, model))[0]?.deny?.rule ?? 'allowed';
    expect(await rule('explain execute masked')).toBe('masking-explain');
    expect(await rule('explain analyze execute masked')).toBe('masking-explain');
    expect(await rule('explain execute never_prepared')).toBe('masking-explain');
    expect(await rule('explain execute plain')).toBe('allowed');
  });

  it('identities without masking rules explain anything', async () => {
    const plain = policy({ name: 'plain', groups: ['x'] });
    expect(
      await masked('explain verbose select 1 ### 0, leak(1), ssn from customers', adminRows(), [plain]),
    ).toEqual([]);
  });
});
