/**
 * Other identities' statement text. Every identity reaches PostgreSQL as the gateway's one role, and
 * PostgreSQL shows a role the text of all its sessions' statements, literals included. Found by trying
 * it: a CI job's statement (with a card number in it) read by an engineer from pg_stat_activity. Now
 * the text is redacted, predicates on it and the functions returning it are refused, and a policy
 * with `statement_text: true` sees it. Real gateway, real PostgreSQL, psql and node-postgres.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psql } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: migrate, allow: [read, write, ddl, transaction, session] }
  - name: dba-on-call
    groups: [audit]
    connections: [prod-db]
    statement_text: true
    rules:
      - { name: reads, allow: [read, transaction, session] }
`;

const SECRET = '4111-1111-1111-1111';

describe("another identity's statement text (pg_stat_activity.query and friends)", () => {
  let stack: Stack;
  let victim: Tunnel;
  let alice: Tunnel;
  let aubrey: Tunnel;
  let running: pg.Client;
  let done: Promise<unknown>;

  const client = async (t: Tunnel) => {
    const c = new pg.Client({ connectionString: t.url });
    await c.connect();
    return c;
  };
  /** Rows of one query as alice (no allowance), or its error as "SQLSTATE routine: message". */
  const asAlice = async (sql: string, values?: unknown[]) => {
    const c = await client(alice);
    try {
      return (await c.query(sql, values)).rows as Record<string, unknown>[];
    } catch (err) {
      const e = err as Error & { code?: string; routine?: string; detail?: string };
      return `${e.code} ${e.routine}: ${e.message} (${e.detail})`;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES });
    victim = await stack.connect(mkdtempSync(join(tmpdir(), 'ci-home-')), 'prod-db', { env: stack.ciEnv() });
    alice = await stack.connect(await stack.login('alice@example.com'));
    aubrey = await stack.connect(await stack.login('aubrey@example.com'));
    running = await client(victim);
    done = running.query(`select pg_sleep(25), '${SECRET}' as card`).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1_000));
  }, 180_000);
  afterAll(async () => {
    await running?.end().catch(() => {});
    await done;
    for (const t of [victim, alice, aubrey]) t?.stop();
    await stack?.stop();
  });

  it('the text is redacted; pid, state and the other columns stay readable', async () => {
    const rows = await asAlice("select pid, state, query from pg_stat_activity where state = 'active'");
    expect(Array.isArray(rows)).toBe(true);
    expect(JSON.stringify(rows)).not.toContain(SECRET);
    expect((rows as { state: string }[]).length).toBeGreaterThanOrEqual(2); // the victim's and this one
    const plain = await asAlice('select pid, state, wait_event from pg_stat_activity');
    expect(JSON.stringify(plain)).toContain('PgSleep');
  });

  it('no route around it: *, whole rows, casts, the extended protocol, PREPARE and EXECUTE, subqueries', async () => {
    for (const [sql, values] of [
      ['select * from pg_stat_activity', undefined],
      ['select a from pg_catalog.pg_stat_activity a', undefined],
      ['select query from pg_stat_activity where pid <> $1', [0]],
      ['select (select query from pg_stat_activity limit 1) as q', undefined],
      ['with s as (select query as q from pg_stat_activity) select q from s', undefined],
    ] as const) {
      const rows = await asAlice(sql, values as unknown[] | undefined);
      expect(Array.isArray(rows), `${sql}: ${rows}`).toBe(true);
      expect(JSON.stringify(rows), sql).not.toContain(SECRET);
    }
    // Computed from the text (casts, functions, aggregates, whole rows too): refused, since whether the
    // computation fails could tell the text (see "an error computed from the text is no oracle").
    for (const sql of [
      'select a::text from pg_catalog.pg_stat_activity a',
      'select row_to_json(a) from pg_stat_activity a',
      "select upper(query) || '' from pg_stat_activity",
      "select (select string_agg(query, ';') from pg_stat_activity) as q",
    ]) {
      const refused = await asAlice(sql);
      expect(refused, sql).toMatch(/^42501 .*"inference-guard"/);
      expect(refused, sql).not.toContain(SECRET);
    }
    const c = await client(alice);
    try {
      await c.query('prepare p as select query from pg_stat_activity');
      expect(JSON.stringify((await c.query('execute p')).rows)).not.toContain(SECRET);
    } finally {
      await c.end();
    }
  });

  it('a predicate on the text, and the functions returning it, are refused 42501 naming why', async () => {
    // An oracle: which statements match a pattern, and joined against a table's values.
    for (const sql of [
      `select pid from pg_stat_activity where query like '%4111%'`,
      'select count(*) from public.customers c, pg_stat_activity a where a.query = c.name',
    ]) {
      expect(await asAlice(sql)).toMatch(
        /^42501 .*"inference-guard" \(masked column pg_catalog\.pg_stat_activity\.query/,
      );
    }
    for (const sql of [
      'select * from pg_stat_get_activity(null)',
      'select pg_stat_get_backend_activity(b) from pg_stat_get_backend_idset() b',
    ]) {
      const refused = await asAlice(sql);
      expect(refused).toMatch(/^42501 /);
      expect(refused).toContain('statement_text: true');
      expect(refused).not.toContain(SECRET);
    }
  });

  it('an error computed from the text is no oracle: a computation on it is refused 42501', async () => {
    // `1 / position(p in query)` fails (22012) exactly when p is not in the other session's text: a
    // substring oracle with no predicate on the text (wait_event picks the victim's session).
    const divide = (pattern: string) =>
      `select 1 / position('${pattern}' in query) from pg_stat_activity where wait_event = 'PgSleep'`;
    for (const sql of [
      divide(SECRET),
      divide('9999-9999'),
      `select case when query like '%4111%' then 1 / 0 end from pg_stat_activity where wait_event = 'PgSleep'`,
    ]) {
      const refused = await asAlice(sql);
      expect(refused, sql).toMatch(
        /^42501 .*"inference-guard" \(masked column pg_catalog\.pg_stat_activity\.query/,
      );
    }
  });

  it('the text cannot be stored where readers would not name the source: a view, a table', async () => {
    const c = await client(victim);
    try {
      await c.query('create table public.copied (t text)');
      const stored = await c.query('insert into public.copied select query from pg_stat_activity').then(
        () => 'inserted',
        (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
      );
      expect(stored).toMatch(/^42501/);
      for (const sql of [
        'create table public.copied2 as select query from pg_stat_activity',
        'create materialized view public.activity_m as select query from pg_stat_activity',
      ]) {
        const made = await c.query(sql).then(
          () => 'created',
          (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
        );
        expect(made, sql).toMatch(/^42501/);
      }
      const made = await c
        .query('create view public.activity_v as select pid, query from pg_stat_activity')
        .then(
          () => 'created',
          (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
        );
      expect(made).toMatch(/^42501/);
    } finally {
      await c.end();
    }
  });

  it('a policy with statement_text: true sees it', async () => {
    const c = await client(aubrey);
    try {
      const rows = (await c.query("select query from pg_stat_activity where state = 'active'")).rows;
      expect(JSON.stringify(rows)).toContain(SECRET);
      const fn = (await c.query('select query from pg_stat_get_activity(null)')).rows;
      expect(JSON.stringify(fn)).toContain(SECRET);
    } finally {
      await c.end();
    }
  });

  it('other routes to the text: to_jsonb, quoted names, a cursor, COPY, EXPLAIN ANALYZE', async () => {
    for (const sql of [
      'select query from pg_catalog."pg_stat_activity"',
      'select "query" from "pg_stat_activity"',
    ]) {
      const rows = await asAlice(sql);
      expect(Array.isArray(rows), `${sql}: ${rows}`).toBe(true);
      expect(JSON.stringify(rows), sql).not.toContain(SECRET);
    }
    for (const sql of [
      'select to_jsonb(a) from pg_stat_activity a',
      'select array_agg(a) from pg_stat_activity a',
    ]) {
      const refused = await asAlice(sql);
      expect(refused, sql).toMatch(/^42501 .*"inference-guard"/);
      expect(refused, sql).not.toContain(SECRET);
    }
    const c = await client(alice);
    try {
      await c.query('begin');
      await c.query('declare cur cursor for select query from pg_stat_activity');
      expect(JSON.stringify((await c.query('fetch all cur')).rows)).not.toContain(SECRET);
      await c.query('commit');
    } finally {
      await c.end();
    }
    const copied = psql(alice.url, ['-c', 'copy (select query from pg_stat_activity) to stdout']);
    expect(`${copied.stdout}${copied.stderr}`).not.toContain(SECRET);
    expect(copied.status).not.toBe(0);
    // Rows a predicate removed: an oracle, like the predicate itself.
    const explained = await asAlice(
      "explain analyze select pid from pg_stat_activity where query like '%4111%'",
    );
    expect(explained).toMatch(/^42501 /);
  });

  it('views, functions and materialized views a DBA made around the gateway do not pass it on', async () => {
    const direct = (sql: string) => stack.pg.psql(sql, 'shop');
    direct(`
      create view public.dba_activity as select pid, state, query from pg_stat_activity;
      create view public.dba_activity2 as select * from public.dba_activity;
      create view public.dba_raw as select * from pg_stat_get_activity(null);
      create materialized view public.dba_snapshot as select query from pg_stat_activity;
      create function public.peek() returns setof text language sql as 'select query from public.dba_activity2';
      create function public.peek_definer() returns text language plpgsql security definer as $$
        begin return (select string_agg(query, ';') from pg_stat_activity); end $$;
      create view public.dba_peek as select t as q from public.peek() t;
      grant select on public.dba_activity, public.dba_activity2, public.dba_raw, public.dba_snapshot,
        public.dba_peek to public;
    `);
    // The catalog sees them at its next load: a DDL through the gateway reloads it at once.
    const ci = await client(victim);
    try {
      await ci.query('create table public.reload_marker (x int)');
    } finally {
      await ci.end();
    }
    expect(JSON.stringify(direct('select query from public.dba_snapshot'))).toContain('pg_sleep');
    for (const sql of [
      'select query from public.dba_activity',
      'select * from dba_activity2',
      'select * from public.dba_raw',
      'select * from public.dba_snapshot',
      'select q from public.dba_peek',
    ]) {
      const rows = await asAlice(sql);
      expect(Array.isArray(rows), `${sql}: ${rows}`).toBe(true);
      expect(JSON.stringify(rows), sql).not.toContain(SECRET);
    }
    // The other columns of a view over pg_stat_activity stay readable.
    expect(JSON.stringify(await asAlice('select state from public.dba_activity'))).toContain('active');
    for (const sql of [
      "select pid from public.dba_activity2 where query like '%4111%'",
      "select count(*) from public.dba_raw where query like '%4111%'",
      'select public.peek()',
      'select * from peek()',
      "select 1 where public.peek_definer() like '%4111%'",
      // A SECURITY DEFINER PL/pgSQL function reading the source is refused like a SQL one, also when the
      // statement names a source itself.
      'select public.peek_definer()',
      'select query, public.peek() from pg_stat_activity',
    ]) {
      const refused = JSON.stringify(await asAlice(sql));
      expect(refused, sql).toMatch(/^"42501 /);
      expect(refused, sql).not.toContain(SECRET);
    }
    const c = await client(aubrey);
    try {
      const rows = (await c.query('select query from public.dba_activity')).rows;
      expect(JSON.stringify(rows)).toContain(SECRET);
    } finally {
      await c.end();
    }
  });
});
