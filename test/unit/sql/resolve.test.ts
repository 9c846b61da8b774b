/**
 * Names resolve like the server's: search_path order, implicit pg_catalog and pg_temp, `$user`,
 * unusable schemas, shadowing, quoting, overloads; functions are classed by what they do.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCatalog, type Catalog } from '../../../gateway/catalog/catalog.js';
import { compileNameGlobs } from '../../../gateway/sql/glob.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { loadPlpgsqlParser } from '../../../gateway/sql/plpgsql.js';
import { resolveMessage } from '../../../gateway/sql/resolve.js';
import { SessionNames } from '../../../gateway/sql/session-names.js';
import { SessionSettings } from '../../../gateway/sql/settings.js';
import { classifySyntax } from '../../../gateway/sql/syntax.js';
import type { ClassifiedStatement } from '../../../src/shared/statement.js';

beforeAll(async () => {
  await Promise.all([loadSqlParser(), loadPlpgsqlParser()]);
});

let oid = 50_000;
/** A pg_proc row as the catalog query returns it. */
function proc(
  schema: string,
  name: string,
  o: {
    args?: string;
    volatility?: 'i' | 's' | 'v';
    language?: string;
    source?: string;
    config?: string;
    kind?: string;
  } = {},
): (string | null)[] {
  const argTypes = o.args ?? '';
  const nargs = argTypes === '' ? 0 : argTypes.split(' ').length;
  const user = schema !== 'pg_catalog';
  return [
    String(oid++),
    schema,
    name,
    String(nargs),
    '0',
    'false',
    o.volatility ?? 'v',
    o.language ?? (user ? 'sql' : 'internal'),
    o.kind ?? 'f',
    user ? (o.source ?? null) : null,
    null,
    o.config ?? null,
    user && o.language === 'plpgsql' ? '' : null,
    user && o.language === 'plpgsql' ? 'integer' : null,
    null,
    argTypes,
  ];
}

function catalog(): Catalog {
  return buildCatalog({
    relations: [],
    inherits: [],
    functions: [],
    namespaces: [
      ['pg_catalog', 't'],
      ['public', 't'],
      ['secret', 't'],
      ['Secret', 't'],
      ['app', 't'],
      ['hoop_gateway', 't'],
      ['locked', 'f'],
      ['pg_temp_3', 't'],
    ],
    relationNames: [
      ['pg_catalog', 'pg_class'],
      ['public', 'customers'],
      ['public', 'orders'],
      ['public', 'Vault'],
      ['secret', 'customers'],
      ['Secret', 'customers'],
      ['app', 'orders'],
      ['hoop_gateway', 'mine'],
      ['locked', 'orders'],
      ['pg_temp_3', 'scratch'],
    ],
    procs: [
      proc('pg_catalog', 'lower', { args: '25', volatility: 'i' }),
      proc('pg_catalog', 'count', { volatility: 'i', kind: 'a' }),
      proc('pg_catalog', 'now', { volatility: 's' }),
      proc('pg_catalog', 'nextval', { args: '2205' }),
      proc('pg_catalog', 'random'),
      proc('pg_catalog', 'set_config', { args: '25 25 16' }),
      proc('pg_catalog', 'pg_read_file', { args: '25' }),
      proc('pg_catalog', 'pg_stat_reset'),
      proc('public', 'lower', { args: '25', source: 'DELETE FROM orders' }),
      proc('public', 'lower', { args: '23', source: 'DELETE FROM orders' }),
      proc('public', 'forget_orders', { source: 'DELETE FROM orders WHERE id > 40' }),
      proc('public', 'count_orders', { source: 'SELECT count(*) FROM orders' }),
      proc('public', 'nested', { source: 'SELECT public.forget_orders()' }),
      proc('public', 'reads_file', { source: "SELECT pg_read_file('/etc/passwd')" }),
      proc('public', 'loop_a', { source: 'SELECT public.loop_a()' }),
      proc('public', 'pl_delete', {
        language: 'plpgsql',
        source: 'BEGIN DELETE FROM orders; RETURN 1; END',
      }),
      proc('public', 'pl_reads', {
        language: 'plpgsql',
        source: 'DECLARE n int; BEGIN n := public.count_orders(); RETURN n; END',
      }),
      proc('public', 'pl_dynamic', {
        language: 'plpgsql',
        source: "BEGIN EXECUTE 'delete from orders'; RETURN 1; END",
      }),
      proc('public', 'pl_sets_path', {
        language: 'plpgsql',
        source: "BEGIN PERFORM set_config('search_path', 'secret', false); RETURN 1; END",
      }),
      proc('public', 'c_stable', { language: 'c', volatility: 's' }),
      proc('public', 'c_volatile', { language: 'c' }),
      proc('app', 'own_path', { source: 'SELECT * FROM customers', config: 'search_path=secret' }),
    ],
  });
}

function resolve(sql: string, searchPath = '"$user", public', user = 'hoop_gateway'): ClassifiedStatement[] {
  const settings = new SessionSettings(new Map([['search_path', searchPath]]));
  const result = resolveMessage(classifySyntax(sql), { lookup: catalog(), settings, loginUser: user });
  if (!result.classification.ok) throw new Error(result.classification.error);
  return result.classification.statements;
}

const relations = (sql: string, path?: string) => resolve(sql, path)[0]!.relations;

describe('relations resolve through the search_path', () => {
  it('the first schema of the path holding the name wins (shadowing)', () => {
    expect(relations('select * from customers')).toEqual(['public.customers']);
    expect(relations('select * from customers', 'secret, public')).toEqual(['secret.customers']);
    expect(relations('select * from orders', 'app, public')).toEqual(['app.orders']);
    expect(relations('select * from orders', 'public, app')).toEqual(['public.orders']);
  });

  it('quoting keeps case: "Secret" and secret are different schemas, "Vault" is not vault', () => {
    expect(relations('select * from "Secret".customers')).toEqual(['"Secret".customers']);
    expect(relations('select * from customers', '"Secret", public')).toEqual(['"Secret".customers']);
    expect(relations('select * from customers', 'Secret, public')).toEqual(['secret.customers']);
    expect(relations('select * from "Vault"')).toEqual(['public."Vault"']);
  });

  it('$user is the current role; pg_catalog is searched first unless placed; unusable schemas are skipped', () => {
    expect(relations('select * from mine')).toEqual(['hoop_gateway.mine']);
    expect(relations('select * from pg_class', 'public')).toEqual(['pg_catalog.pg_class']);
    expect(relations('select * from orders', 'locked, public')).toEqual(['public.orders']);
  });

  it('temporary relations: created ones live in pg_temp and shadow the path for this session', () => {
    expect(relations('create temp table t (a int)')).toEqual(['pg_temp.t']);
    const settings = new SessionSettings(new Map([['search_path', '"$user", public']]));
    const resolved = resolveMessage(classifySyntax('select * from customers'), {
      lookup: catalog(),
      settings,
      tempRelations: new Set(['customers']),
      loginUser: 'hoop_gateway',
    });
    if (!resolved.classification.ok) throw new Error('parse');
    // Maybe the session's temporary table, maybe public's: both count.
    expect(resolved.classification.statements[0]!.relations).toEqual([
      'pg_temp.customers',
      'public.customers',
    ]);
  });

  it('CREATE without a schema lands in the first schema of the path', () => {
    expect(relations('create table x (a int)', 'app, public')).toEqual(['app.x']);
    expect(relations('create table x (a int)', 'nope, public')).toEqual(['public.x']);
  });

  it('an unknown search_path resolves to every schema that holds the name', () => {
    const names = new SessionNames({
      resetValues: new Map([['search_path', 'public']]),
      user: 'hoop_gateway',
    });
    names.forwarded(['1'], [{ settingOps: [{ op: 'unknown' }], createsTemp: [], discardsTemp: false }]);
    names.completed('1', { ok: true });
    names.transaction({ type: 'commit', implicit: true });
    const r = names.resolveWith(classifySyntax('select * from customers'), catalog());
    if (!r.classification.ok) throw new Error('parse');
    expect(r.classification.statements[0]!.relations).toEqual([
      '"Secret".customers',
      'public.customers',
      'secret.customers',
    ]);
  });

  it('a message sees its own SET search_path and set_config, statement by statement', () => {
    const [, select] = resolve('set search_path = secret; select * from customers');
    expect(select!.relations).toEqual(['secret.customers']);
    const [, again] = resolve("select set_config('search_path', 'secret', false); select * from customers");
    expect(again!.relations).toEqual(['secret.customers']);
  });

  it('UPDATE pg_settings changes the setting too (and is also class session)', () => {
    const [update, select] = resolve(
      "update pg_settings set setting = 'secret' where name = 'search_path'; select * from customers",
    );
    expect([update!.class, ...(update!.alsoClasses ?? [])]).toEqual(['write', 'session']);
    expect(select!.relations).toEqual(['public.customers', 'secret.customers']);
  });

  it('a set_config that may not run (WHERE, FROM, CASE ...) leaves both paths possible', () => {
    for (const maybe of [
      "select set_config('search_path', 'secret', false) where false",
      "select set_config('search_path', 'secret', false) from orders limit 0",
      "select case when false then set_config('search_path', 'secret', false) end",
      "select 1 where false union all select set_config('search_path', 'secret', false)",
    ]) {
      const [, select] = resolve(`${maybe}; select * from customers`);
      expect(select!.relations, maybe).toEqual(['public.customers', 'secret.customers']);
    }
  });

  it('statements still in flight make the next one resolve under every path they could leave', () => {
    const names = new SessionNames({
      resetValues: new Map([['search_path', 'public']]),
      user: 'hoop_gateway',
    });
    const first = names.resolveWith(classifySyntax('set search_path = secret'), catalog());
    names.forwarded(['1'], first.effects);
    const second = names.resolveWith(classifySyntax('select * from customers'), catalog());
    if (!second.classification.ok) throw new Error('parse');
    expect(second.classification.statements[0]!.relations).toEqual(['public.customers', 'secret.customers']);
    names.completed('1', { ok: true });
    names.transaction({ type: 'commit', implicit: true });
    const third = names.resolveWith(classifySyntax('select * from customers'), catalog());
    if (!third.classification.ok) throw new Error('parse');
    expect(third.classification.statements[0]!.relations).toEqual(['secret.customers']);
  });
});

describe('functions are classed by what they do', () => {
  const cls = (sql: string, path?: string) => {
    const s = resolve(sql, path)[0]!;
    return [s.class, ...(s.alsoClasses ?? [])];
  };

  it('a SQL function whose body deletes is a write; one that counts is a read', () => {
    expect(cls('select forget_orders()')).toEqual(['write', 'read']);
    expect(cls('select count_orders()')).toEqual(['read']);
    expect(cls('select nested()')).toEqual(['write', 'read']);
    expect(resolve('select forget_orders()')[0]!.relations).toEqual(['public.orders']);
  });

  it('PL/pgSQL bodies are read too; SQL built at run time is code the gateway cannot see', () => {
    expect(cls('select pl_delete()')).toEqual(['write', 'read']);
    expect(cls('select pl_reads()')).toEqual(['read']);
    expect(cls('select pl_dynamic()')).toEqual(['procedural', 'read']);
    expect(resolve('select pl_dynamic()')[0]!.flags).toContain('dynamic-sql');
  });

  it('without a readable body, volatility decides: stable reads, volatile is procedural', () => {
    expect(cls('select c_stable()')).toEqual(['read']);
    expect(cls('select c_volatile()')).toEqual(['procedural', 'read']);
    expect(cls('select not_in_catalog()')).toEqual(['procedural', 'read']);
  });

  it('built-ins by the lists: nextval writes, random reads, pg_stat_reset administers, set_config is session', () => {
    expect(cls("select nextval('s')")).toEqual(['write', 'read']);
    expect(cls('select random(), now(), count(*)')).toEqual(['read']);
    expect(cls('select pg_stat_reset()')).toEqual(['admin', 'read']);
    expect(cls("select set_config('work_mem', '1MB', false)")).toEqual(['session', 'read']);
  });

  it('overloads and shadowing: a same-signature function later in the path is hidden; other arities count', () => {
    // pg_catalog.lower(text) hides public.lower(text); public.lower(int) may still be chosen.
    expect(resolve('select lower($1)')[0]!.functions).toEqual(['pg_catalog.lower', 'public.lower']);
    expect(cls('select lower($1)')).toEqual(['write', 'read']);
    expect(cls('select lower($1)', 'public, pg_catalog')).toEqual(['write', 'read']);
  });

  it('side channels inside a body count; recursion ends; a function uses its own search_path', () => {
    expect(resolve('select reads_file()')[0]!.sideChannels).toEqual(['pg_read_file']);
    expect(cls('select loop_a()')).toEqual(['read']);
    expect(resolve('select app.own_path()')[0]!.relations).toEqual(['secret.customers']);
  });

  it('a function that may change settings makes the search_path unknown afterwards', () => {
    const names = new SessionNames({ resetValues: new Map([['search_path', 'public']]), user: 'u' });
    const r = names.resolveWith(classifySyntax('select pl_sets_path()'), catalog());
    expect(r.effects[0]!.settingOps).toContainEqual({ op: 'unknown' });
  });

  it('EXPLAIN without ANALYZE runs nothing: its functions do not count', () => {
    expect(cls('explain select forget_orders()')).toEqual(['read']);
  });
});

describe('settings the gateway holds', () => {
  const held = new Map([['default_transaction_read_only', 'on']]);
  const violation = (sql: string) => {
    const settings = new SessionSettings(new Map([['search_path', 'public']]));
    const r = resolveMessage(classifySyntax(sql), { lookup: catalog(), settings, held });
    return r.effects.map((e) => e.heldViolation).find(Boolean);
  };

  it('every way to make a read-only session read-write is refused', () => {
    for (const sql of [
      'set default_transaction_read_only = off',
      'set local default_transaction_read_only to false',
      'set session characteristics as transaction read write',
      'begin read write',
      'start transaction isolation level serializable, read write',
      'set transaction read write',
      "select set_config('default_transaction_read_only', 'off', false)",
      "select set_config('transaction_read_only', 'off', true)",
      "select set_config('default_transaction_read_only', $1, false)",
      "select set_config(lower('DEFAULT_TRANSACTION_READ_ONLY'), 'off', false)",
      'select pl_sets_path()',
      "update pg_settings set setting = 'off' where name = 'default_transaction_read_only'",
      'update pg_settings set setting = $1 where name = $2',
    ]) {
      expect(violation(sql), sql).toBeTruthy();
    }
  });

  it('keeping it on, resetting it, and everything else are fine', () => {
    for (const sql of [
      'set default_transaction_read_only = on',
      'reset default_transaction_read_only',
      'set default_transaction_read_only to default',
      'reset all',
      'begin read only',
      'begin',
      'set search_path = app',
    ]) {
      expect(violation(sql), sql).toBeUndefined();
    }
  });
});

describe('policy globs over resolved names', () => {
  it('unquoted parts fold to lower case; allow matches exactly, deny across case; quoted parts are exact', () => {
    const allow = compileNameGlobs(['public.vault', '"Secret".*'], {
      defaultSchema: 'public',
      caseInsensitive: false,
    });
    expect(allow('public.vault')).toBe(true);
    expect(allow('public."Vault"')).toBe(false);
    expect(allow('"Secret".customers')).toBe(true);
    expect(allow('secret.customers')).toBe(false);
    const deny = compileNameGlobs(['Vault', 'secret.*', '"Exact".t'], {
      defaultSchema: 'public',
      caseInsensitive: true,
    });
    expect(deny('public."Vault"')).toBe(true);
    expect(deny('public.vault')).toBe(true);
    expect(deny('"Secret".customers')).toBe(true);
    expect(deny('"Exact".t')).toBe(true);
    expect(deny('exact.t')).toBe(false);
  });
});
