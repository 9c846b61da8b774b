/**
 * Issue 4 on the wire: a read-only identity cannot change data or reach a side channel by any route
 * through the tunnel, while ordinary reads pass untouched. Real PostgreSQL (log_statement=all, so we
 * can prove a denied text never arrived), real IdP, real gateway and CLI processes, real clients:
 * psql (simple protocol), node-postgres (simple and extended, named and unnamed, parameters),
 * postgres.js (pipelined) and raw protocol messages (several Parse/Bind/Execute before one Sync,
 * FunctionCall).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScramClient } from '../../src/shared/scram.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

/** Alice (group engineering) may read, and nothing else; rita (db-reviewers) may also write. */
const POLICIES = `
policies:
  - name: read-only
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: no-changes, deny: [write, ddl, dcl, admin, copy-out, copy-in, procedural, utility] }
  - name: writers
    groups: [db-reviewers]
    connections: [prod-db]
    rules:
      - { name: read-write, allow: [read, write, transaction, session] }
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: migrate, allow: [read, write, ddl, transaction, session, copy-in, copy-out] }
  - name: auditors
    groups: [audit]
    audit: true
`;

/** Objects an attacker would like to use: a procedure and a function that write, a matview, dblink. */
const SETUP_SQL = `
CREATE EXTENSION IF NOT EXISTS dblink;
SET ROLE hoop_gateway;
CREATE PROCEDURE public.purge_orders() LANGUAGE sql AS $$ DELETE FROM public.orders $$;
CREATE MATERIALIZED VIEW public.mv AS SELECT count(*) AS n FROM public.orders;
CREATE TABLE public.scratch (id int PRIMARY KEY, note text);
INSERT INTO public.scratch VALUES (1, 'one'), (2, 'two');
`;

const PWNED = '/tmp/hoop-policy-pwned';

/**
 * Every route we could think of to change data or step outside the tables, and the rule that must
 * refuse it. Each text starts with a marker comment: the PostgreSQL log must never contain one.
 */
const ATTEMPTS: [sql: string, rule: string][] = [
  // Plain writes
  ['insert into orders (customer_id, total_cents) values (1, 1)', 'no-changes'],
  ["update customers set country = 'XX'", 'no-changes'],
  ['delete from orders', 'no-changes'],
  ['merge into orders o using (select 1 as id) s on o.id = s.id when matched then delete', 'no-changes'],
  ['truncate orders', 'no-changes'],
  ['insert into orders (customer_id, total_cents) values (1, 1) on conflict do nothing', 'no-changes'],
  ['update scratch set note = $$x$$ where id = 1 returning *', 'no-changes'],
  // Writes dressed up as reads
  ['with x as (delete from orders returning *) select count(*) from x', 'no-changes'],
  ["with x as (update customers set name = 'x' returning 1) select * from x", 'no-changes'],
  ['select (with x as (delete from orders returning 1) select 1)', 'no-changes'],
  ['select * into stolen from customers', 'no-changes'],
  ['create table stolen as select * from customers', 'no-changes'],
  ['create temp table t1 (a int)', 'no-changes'],
  ['explain analyze delete from orders', 'no-changes'],
  ['explain (analyze, format json) with x as (delete from orders returning 1) select * from x', 'no-changes'],
  ['declare c cursor for with x as (delete from orders returning *) select * from x', 'no-changes'],
  ['refresh materialized view mv', 'no-changes'],
  // Code
  ['do $$ begin delete from orders; end $$', 'no-changes'],
  ['call purge_orders()', 'no-changes'],
  ['prepare p as delete from orders', 'no-changes'],
  ['execute p', 'unplaceable'],
  ['prepare p2 as select 1; prepare p2 as delete from orders', 'no-changes'],
  // Multi-statement strings, comments, quoting
  ['select 1; delete from orders', 'no-changes'],
  ['select 1 /* ; */; delete from orders', 'no-changes'],
  ['select $$; $$; delete from orders', 'no-changes'],
  ["select $a$ $$ $a$; delete from orders -- '", 'no-changes'],
  ['/* /* nested */ delete from orders; */ delete from orders', 'no-changes'],
  ['select 1; commit; delete from orders', 'no-changes'],
  ["select 'a\\'; delete from orders; --'", 'no-changes'],
  ["select E'\\''; delete from orders", 'no-changes'],
  ['select * from customers; select pg_read_file($$x$$)', 'builtin-deny-list'],
  ['delete/**/from orders', 'no-changes'],
  ['DeLeTe FROM "orders"', 'no-changes'],
  [
    'select 1 from orders where id = 0 union all select 1 from (select nextval($$customers_id_seq$$)) s',
    'no-changes',
  ],
  // Server files, programs, other servers, other sessions
  ["select pg_read_file('/etc/passwd')", 'builtin-deny-list'],
  ["select pg_catalog.pg_read_file('/etc/passwd')", 'builtin-deny-list'],
  ["select pg_ls_dir('.')", 'builtin-deny-list'],
  [`copy (select 1) to program 'touch ${PWNED}'`, 'no-changes'],
  ["copy customers from '/etc/passwd'", 'no-changes'],
  ['copy customers to stdout', 'no-changes'],
  ['copy customers from stdin', 'no-changes'],
  ["select lo_import('/etc/passwd')", 'builtin-deny-list'],
  ['select lo_create(0)', 'no-changes'],
  ["select lo_from_bytea(0, 'x')", 'no-changes'],
  ["select dblink_exec('dbname=shop', 'delete from orders')", 'builtin-deny-list'],
  ["select * from dblink('dbname=shop', 'select 1') as t(a int)", 'builtin-deny-list'],
  ["select query_to_xml('delete from orders returning 1', true, false, '')", 'builtin-deny-list'],
  ['select pg_terminate_backend(1)', 'builtin-deny-list'],
  ['select pg_reload_conf()', 'builtin-deny-list'],
  // Who we are, how names and quotes are read
  ['set role postgres', 'builtin-deny-list'],
  ['set session authorization postgres', 'builtin-deny-list'],
  ["select set_config('role', 'postgres', false)", 'builtin-deny-list'],
  ["select set_config(lower('ROLE'), 'postgres', false)", 'builtin-deny-list'],
  ['set standard_conforming_strings = off', 'builtin-deny-list'],
  ["select set_config('standard_conforming_strings', 'off', false)", 'builtin-deny-list'],
  ["set client_encoding = 'SJIS'", 'builtin-deny-list'],
  ['set backslash_quote = on', 'builtin-deny-list'],
  ['set session_replication_role = replica', 'builtin-deny-list'],
  // Sequences, notifications, locks, maintenance, privileges
  ["select nextval('customers_id_seq')", 'no-changes'],
  ["select setval('customers_id_seq', 1000)", 'no-changes'],
  ["select pg_notify('x', 'y')", 'no-changes'],
  ['notify x', 'no-changes'],
  ['lock customers', 'no-changes'],
  ['vacuum customers', 'no-changes'],
  ['analyze customers', 'no-changes'],
  ["alter system set log_statement = 'none'", 'no-changes'],
  ['grant select on customers to public', 'no-changes'],
  ['create role mallory', 'no-changes'],
  ['create extension pg_trgm', 'no-changes'],
  ["comment on table customers is 'x'", 'no-changes'],
  // Another session's two-phase transaction
  ["commit prepared 'hoop-victim'", 'builtin-deny-list'],
  ["rollback prepared 'hoop-victim'", 'builtin-deny-list'],
  // Not SQL at all: refused too, but answered as PostgreSQL answers a syntax error (syntax-errors.test.ts).
];

let marker = 0;
const deniedText = (sql: string) => `/* deny-marker-${++marker} */ ${sql}`;

interface Raw {
  send(...buffers: Buffer[]): void;
  /** Server messages up to and including the n-th ReadyForQuery from now. */
  untilReady(n?: number): Promise<Msg[]>;
  close(): void;
}
interface Msg {
  type: string;
  body: Buffer;
}

function errorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    fields[code] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return fields;
}

/** A hand-driven protocol client: startup and SCRAM, then exactly the bytes a test sends. */
async function openRaw(port: number, password: string, user = 'hoop', database = 'prod-db'): Promise<Raw> {
  const socket: Socket = netConnect({ host: '127.0.0.1', port });
  let pending = Buffer.alloc(0);
  const messages: Msg[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 1 + pending.readInt32BE(1)) {
      const length = pending.readInt32BE(1);
      messages.push({ type: String.fromCharCode(pending[0]!), body: pending.subarray(5, 1 + length) });
      pending = pending.subarray(1 + length);
    }
    wake?.();
  });
  const next = async (): Promise<Msg> => {
    const deadline = Date.now() + 20_000;
    while (messages.length === 0) {
      if (Date.now() > deadline || socket.destroyed) throw new Error('no message from the server');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    return messages.shift()!;
  };
  await new Promise((r) => socket.once('connect', r));
  socket.write(serialize.startup({ user, database }));
  const scram = new ScramClient(password);
  for (;;) {
    const m = await next();
    if (m.type === 'E') throw new Error(`login failed: ${errorFields(m.body).M}`);
    if (m.type === 'R') {
      const code = m.body.readInt32BE(0);
      if (code === 10) socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
      if (code === 11)
        socket.write(serialize.sendSCRAMClientFinalMessage(scram.final(m.body.toString('utf8', 4))));
    }
    if (m.type === 'Z') break;
  }
  return {
    send: (...buffers) => socket.write(Buffer.concat(buffers)),
    async untilReady(n = 1) {
      const out: Msg[] = [];
      let seen = 0;
      while (seen < n) {
        const m = await next();
        out.push(m);
        if (m.type === 'Z') seen++;
      }
      return out;
    },
    close: () => {
      socket.end(serialize.end());
    },
  };
}

/** Message types in order, with errors as E:<sqlstate> and ReadyForQuery as Z:<status>. */
function shape(messages: Msg[]): string[] {
  return messages
    .filter((m) => m.type !== 'N' && m.type !== 'S')
    .map((m) =>
      m.type === 'E'
        ? `E:${errorFields(m.body).C}`
        : m.type === 'Z'
          ? `Z:${String.fromCharCode(m.body[0]!)}`
          : m.type,
    );
}

/** Parse + Bind + Execute of one statement (unnamed unless named), no Sync. */
function pbe(sql: string, name = '', values: (string | null)[] = []): Buffer {
  return Buffer.concat([
    serialize.parse({ name, text: sql }),
    serialize.bind({ statement: name, values }),
    serialize.describe({ type: 'P' }),
    serialize.execute({}),
  ]);
}

function psql(url: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync('psql', ['-X', '-v', 'ON_ERROR_STOP=1', url, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
}

describe('a read-only identity through the tunnel', () => {
  let stack: Stack;
  let alice: string;
  let tunnel: Tunnel;
  let client: pg.Client;
  let snapshot: () => string;
  let before: string;

  beforeAll(async () => {
    stack = await startStack({
      policies: POLICIES,
      pgSettings: { log_statement: "'all'", max_prepared_transactions: '5' },
    });
    stack.pg.psql(SETUP_SQL, 'shop');
    alice = await stack.login('alice@example.com');
    tunnel = await stack.connect(alice);
    client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    // Everything a successful attack would change, read as the superuser.
    snapshot = () =>
      stack.pg.psql(
        `select (select count(*) from customers), (select string_agg(name || country, ',' order by id) from customers),
                (select count(*) || ':' || sum(total_cents) from orders), (select string_agg(note, ',' order by id) from scratch),
                (select string_agg(relname, ',' order by relname) from pg_class where relnamespace = 'public'::regnamespace),
                (select last_value from customers_id_seq), (select count(*) from pg_largeobject_metadata),
                (select count(*) from pg_roles), (select count(*) from pg_prepared_xacts),
                (select n from mv), (select count(*) from pg_extension),
                (select coalesce(obj_description('public.customers'::regclass), '-'))`,
        'shop',
      );
    // A two-phase transaction of another session, the kind COMMIT/ROLLBACK PREPARED could finish.
    stack.pg.psql(
      "SET ROLE hoop_gateway; BEGIN; INSERT INTO public.scratch VALUES (99, 'victim'); PREPARE TRANSACTION 'hoop-victim';",
      'shop',
    );
    before = snapshot();
  }, 120_000);

  afterAll(async () => {
    await client?.end().catch(() => {});
    tunnel?.stop();
    await stack?.stop();
  });

  it('refuses every route in the simple protocol (node-postgres), outside a transaction block', async () => {
    for (const [sql, rule] of ATTEMPTS) {
      const err = await client.query(deniedText(sql)).then(
        () => undefined,
        (e: pg.DatabaseError) => e,
      );
      expect(err, sql).toBeDefined();
      expect(err!.code, sql).toBe('42501');
      expect(err!.message, sql).toContain(`"${rule}"`);
      expect(err!.routine, sql).toBe('hoop_policy_denied');
      // The session goes on, in the same state as the database: idle.
      expect((await client.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
      expect(snapshot(), sql).toBe(before);
    }
    expect(existsSync(PWNED)).toBe(false);
  }, 120_000); // one round trip and a snapshot per attempt: room on a busy machine

  it('inside BEGIN a refusal aborts the block on both sides, exactly like a Postgres error', async () => {
    for (const [sql] of ATTEMPTS) {
      await client.query('begin');
      await client.query('select count(*) from customers');
      await expect(client.query(deniedText(sql)), sql).rejects.toMatchObject({ code: '42501' });
      // The client sees what Postgres says after any error in a block, until ROLLBACK.
      await expect(client.query('select 1'), sql).rejects.toMatchObject({
        code: '25P02',
        message: expect.stringMatching(/current transaction is aborted/),
      });
      await expect(client.query('commit')).resolves.toMatchObject({ command: 'ROLLBACK' });
      expect((await client.query('select 2 as ok')).rows).toEqual([{ ok: 2 }]);
    }
    expect(snapshot()).toBe(before);
  });

  it('refuses every route in the extended protocol: unnamed, named, with parameters, in and out of a block', async () => {
    let n = 0;
    for (const [sql, rule] of ATTEMPTS) {
      const text = deniedText(sql);
      for (const query of [
        { text, queryMode: 'extended' as const },
        { text, name: `attempt-${n++}` },
      ]) {
        await expect(client.query(query), sql).rejects.toMatchObject({
          code: '42501',
          message: expect.stringContaining(`"${rule}"`),
        });
        expect((await client.query({ text: 'select $1::int as ok', values: [7] })).rows).toEqual([{ ok: 7 }]);
      }
      await client.query('begin');
      await expect(client.query({ text, queryMode: 'extended' }), sql).rejects.toMatchObject({
        code: '42501',
      });
      await expect(client.query({ text: 'select $1::int', values: [1] })).rejects.toMatchObject({
        code: '25P02',
      });
      await client.query('rollback');
    }
    // Parameters do not help either.
    for (const [text, values] of [
      ['delete from orders where id = $1', [1]],
      ['update customers set name = $1 where id = $2', ['x', 1]],
      ['select setval($1, 1000)', ['customers_id_seq']],
      ['select pg_read_file($1)', ['/etc/passwd']],
      ['select set_config($1, $2, false)', ['role', 'postgres']],
    ] as const) {
      await expect(client.query({ text: deniedText(text), values: [...values] }), text).rejects.toMatchObject(
        { code: '42501' },
      );
    }
    expect(snapshot()).toBe(before);
  });

  it('refuses through psql, which reports the rule and exits 1; the session-level tricks do not stick', () => {
    for (const [sql, rule] of ATTEMPTS.filter((_, i) => i % 3 === 0)) {
      const result = psql(tunnel.url, ['-c', deniedText(sql)]);
      expect(result.status, sql).toBe(1);
      expect(result.stderr, sql).toMatch(new RegExp(`ERROR:  hoop: statement denied by rule "${rule}"`));
    }
    // Startup options are judged as the equivalent SET: one policy refuses ends the connection with a
    // FATAL naming it (nothing is dropped without a word), and a read-only session stays read-only.
    for (const [option, name, rule] of [
      ['-c standard_conforming_strings=off', 'standard_conforming_strings', 'builtin-deny-list'],
      ['-c role=postgres', 'role', 'builtin-deny-list'],
      ['-c default_transaction_read_only=off', 'default_transaction_read_only', 'read-only-session'],
    ]) {
      const refused = psql(tunnel.url, ['-At', '-c', 'select 1'], { PGOPTIONS: option! });
      expect(refused.status, option).toBe(2);
      expect(refused.stderr, option).toMatch(
        new RegExp(`FATAL:  hoop: startup parameter "${name}" refused by rule "${rule}"`),
      );
    }
    const viaOptions = psql(
      tunnel.url,
      [
        '-At',
        '-c',
        'show standard_conforming_strings',
        '-c',
        'select current_user',
        '-c',
        'show search_path',
      ],
      { PGOPTIONS: '-c search_path=evil,public' },
    );
    expect(viaOptions.stderr).toBe('');
    expect(viaOptions.stdout.trim().split('\n')).toEqual(['on', 'hoop_gateway', 'evil,public']);
    // The backslash-quote trick needs standard_conforming_strings off, which is refused; the
    // string then reads the same to the gateway and to Postgres, and the write inside is seen.
    const trick = psql(tunnel.url, [
      '-At',
      '-c',
      'set standard_conforming_strings = off',
      '-c',
      deniedText("select 'x\\'; delete from orders; --'"),
    ]);
    expect(trick.status).toBe(1);
    expect(trick.stderr).toMatch(/denied by rule "builtin-deny-list"/);
    expect(snapshot()).toBe(before);
  });

  it('a pipeline (several Parse/Bind/Execute before one Sync) skips to Sync after a refusal, then goes on', async () => {
    const raw = await openRaw(tunnel.port, tunnel.password);
    try {
      // Outside a block: select, DELETE (refused), select — then a second Sync group.
      raw.send(
        pbe('select 1 as a'),
        pbe(deniedText('delete from orders'), 'named-delete'),
        pbe('select 2 as b'),
        serialize.sync(),
        pbe('select count(*) from orders'),
        serialize.sync(),
      );
      const outside = await raw.untilReady(2);
      expect(shape(outside)).toEqual([
        '1',
        '2',
        'T',
        'D',
        'C',
        'E:42501',
        'Z:I',
        '1',
        '2',
        'T',
        'D',
        'C',
        'Z:I',
      ]);
      const error = errorFields(outside.find((m) => m.type === 'E')!.body);
      expect(error.M).toMatch(/denied by rule "no-changes" of policy "read-only"/);
      expect(error.R).toBe('hoop_policy_denied');
      // Inside a block: the block is aborted on both sides; only ROLLBACK brings it back.
      raw.send(serialize.query('begin'));
      expect(shape(await raw.untilReady())).toEqual(['C', 'Z:T']);
      raw.send(
        pbe('select 1'),
        pbe(deniedText('with x as (delete from orders returning 1) select * from x')),
        pbe('select 3'),
        serialize.sync(),
      );
      expect(shape(await raw.untilReady())).toEqual(['1', '2', 'T', 'D', 'C', 'E:42501', 'Z:E']);
      raw.send(pbe('select 4'), serialize.sync());
      const aborted = await raw.untilReady();
      expect(shape(aborted)).toEqual(['E:25P02', 'Z:E']);
      raw.send(serialize.query('rollback'));
      expect(shape(await raw.untilReady())).toEqual(['C', 'Z:I']);
      // The statement refused at Parse is not left behind under its name.
      raw.send(serialize.bind({ statement: 'named-delete' }), serialize.execute({}), serialize.sync());
      expect(shape(await raw.untilReady())).toEqual(['E:26000', 'Z:I']);
      // A Parse allowed in one group and executed (with parameters) in the next works.
      raw.send(
        serialize.parse({ name: 'by-id', text: 'select name from customers where id = $1' }),
        serialize.sync(),
      );
      expect(shape(await raw.untilReady())).toEqual(['1', 'Z:I']);
      raw.send(
        serialize.bind({ statement: 'by-id', values: ['2'] }),
        serialize.execute({}),
        serialize.sync(),
      );
      const byId = await raw.untilReady();
      expect(shape(byId)).toEqual(['2', 'D', 'C', 'Z:I']);
      expect(byId.find((m) => m.type === 'D')!.body.toString('utf8')).toContain('Brian Sample');
    } finally {
      raw.close();
    }
    expect(snapshot()).toBe(before);
  });

  it('refuses the fast-path FunctionCall message (lo_creat by OID), and the session continues', async () => {
    const oid = Number(stack.pg.psql("select 'lo_creat(integer)'::regprocedure::oid", 'shop').trim());
    const raw = await openRaw(tunnel.port, tunnel.password);
    try {
      // FunctionCall: function OID, argument formats, arguments (int4 -1 in binary), result format.
      const body = Buffer.alloc(4 + 2 + 2 + 2 + 4 + 4 + 2);
      let o = body.writeInt32BE(oid, 0);
      o = body.writeInt16BE(1, o);
      o = body.writeInt16BE(1, o);
      o = body.writeInt16BE(1, o);
      o = body.writeInt32BE(4, o);
      o = body.writeInt32BE(-1, o);
      body.writeInt16BE(1, o);
      const header = Buffer.alloc(5);
      header.write('F', 0, 'latin1');
      header.writeInt32BE(4 + body.length, 1);
      raw.send(header, body);
      const answer = await raw.untilReady();
      expect(shape(answer)).toEqual(['E:42501', 'Z:I']);
      expect(errorFields(answer[0]!.body).M).toMatch(/FunctionCall/);
      raw.send(serialize.query('select 1'));
      expect(shape(await raw.untilReady())).toEqual(['T', 'D', 'C', 'Z:I']);
    } finally {
      raw.close();
    }
    expect(snapshot()).toBe(before);
  });

  it('postgres.js pipelines queries on one connection: the refused one fails alone', async () => {
    const sql = postgres(tunnel.url, { max: 1, onnotice: () => {} });
    try {
      const results = await Promise.allSettled([
        sql`select count(*)::int as n from customers`,
        sql.unsafe(deniedText('delete from orders where id > $1'), [0]),
        sql`select ${'x'}::text as v`,
        sql.unsafe(deniedText("select setval('customers_id_seq', 1000)")),
        sql`select 5 as five`,
      ]);
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect((results[0] as PromiseFulfilledResult<{ n: number }[]>).value[0]!.n).toBe(5);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: '42501' });
      expect((results[4] as PromiseFulfilledResult<{ five: number }[]>).value[0]!.five).toBe(5);
      // In a transaction the refusal aborts it; postgres.js rolls back and reports our error.
      await expect(
        sql.begin(async (tx) => {
          await tx`select 1`;
          await tx.unsafe(deniedText('truncate orders'));
        }),
      ).rejects.toMatchObject({ code: '42501' });
    } finally {
      await sql.end();
    }
    expect(snapshot()).toBe(before);
  });

  it('a user-defined function with side effects is a read to the classifier: a functions: deny rule closes it', async () => {
    // Documented limit (docs/policy.md): the gateway cannot see into function bodies. What a
    // policy can do is name such functions; `policy test` shows the engine honours it.
    const config = readFileSync(stack.configFile, 'utf8').replace(
      '      - { name: reads, allow: [read, transaction, session] }',
      '      - { name: no-writing-functions, deny: [read], functions: [forget_orders] }\n      - { name: reads, allow: [read, transaction, session] }',
    );
    const file = join(stack.pg.dataDir, '..', 'with-function-rule.yaml');
    writeFileSync(file, config);
    const args = [
      'policy',
      'test',
      '--config',
      file,
      '--identity',
      'alice',
      '--groups',
      'engineering',
      '--connection',
      'prod-db',
      '--json',
    ];
    const denied = await stack.cli(alice, [...args, '--sql', 'select forget_orders()']);
    expect(denied.code).toBe(4);
    expect(JSON.parse(denied.stdout)).toMatchObject({ decision: 'deny', rule: 'no-writing-functions' });
    const allowed = await stack.cli(alice, [...args, '--sql', 'select lower(name) from customers']);
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ decision: 'allow', rule: 'reads' });
  });

  it('ordinary reads pass untouched: psql output through the tunnel is byte-identical to direct', () => {
    const direct = stack.pg.url('shop', 'hoop_gateway', stack.dbPassword);
    const reads = [
      'select * from customers order by id',
      'select o.id, c.name, o.total_cents, o.created_at from orders o join customers c on c.id = o.customer_id order by o.id',
      'select country, count(*), sum(o.total_cents), avg(o.total_cents) from customers c left join orders o on o.customer_id = c.id group by country order by country',
      "select null::text as n, 'ünïcødé ✓'::text as u, '\\x00ff'::bytea as b, array[1,2,null] as a, '{\"k\": [1, 2]}'::jsonb as j, 1.5e300::float8 as f, interval '1 day 2 hours' as i",
      'with t as (select * from orders where total_cents > 2000) select count(*) from t',
      'table scratch',
      "values (1, 'a'), (2, 'b')",
      'show standard_conforming_strings',
      'explain (costs off) select * from orders where id = 1',
      'select current_user, session_user, current_database()',
    ];
    for (const sql of reads) {
      for (const format of [[], ['-A'], ['-x'], ['--csv']]) {
        const a = psql(direct, [...format, '-c', sql]);
        const b = psql(tunnel.url, [...format, '-c', sql]);
        expect(a.stderr, sql).toBe('');
        expect(b.stderr, sql).toBe('');
        expect(Buffer.from(b.stdout).equals(Buffer.from(a.stdout)), sql).toBe(true);
      }
    }
  });

  it('hoopctl policy test explains each decision, offline (--config) and online (as alice); exit 0 allow, 4 deny', async () => {
    const offline = [
      '--config',
      stack.configFile,
      '--identity',
      'alice@example.com',
      '--groups',
      'engineering',
    ];
    const cases: [sql: string, decision: string, rule: string, code: number, classes: string[]][] = [
      ['select * from orders where id = 1', 'allow', 'reads', 0, ['read']],
      ['begin; select 1; commit', 'allow', 'reads', 0, ['transaction', 'read', 'transaction']],
      ['select 1; delete from orders', 'deny', 'no-changes', 4, ['read', 'write']],
      ["select pg_read_file('/etc/passwd')", 'deny', 'builtin-deny-list', 4, ['read']],
      ["commit prepared 'x'", 'deny', 'builtin-deny-list', 4, ['transaction']],
      ['delete from', 'deny', 'unparseable', 4, []],
    ];
    for (const [sql, decision, rule, code, classes] of cases) {
      for (const mode of [offline, []]) {
        const result = await stack.cli(alice, [
          'policy',
          'test',
          ...mode,
          '--connection',
          'prod-db',
          '--sql',
          sql,
          '--json',
        ]);
        expect(result.code, `${mode.length ? 'offline' : 'online'}: ${sql}\n${result.stderr}`).toBe(code);
        const explanation = JSON.parse(result.stdout);
        expect(explanation, sql).toMatchObject({
          decision,
          rule,
          connection: 'prod-db',
          identity: { subject: 'alice@example.com' },
        });
        expect(
          explanation.statements.map((st: { class: string }) => st.class),
          sql,
        ).toEqual(classes);
        expect(explanation.reason, sql).toBeTruthy();
      }
    }
    // Plain text for people: the decision, the rule, the statement that decided.
    const text = await stack.cli(alice, [
      'policy',
      'test',
      '--connection',
      'prod-db',
      '--sql',
      'select 1; truncate orders',
    ]);
    expect(text.code).toBe(4);
    expect(text.stdout).toMatch(/decision:\s+DENY/);
    expect(text.stdout).toMatch(/rule:\s+no-changes/);
    expect(text.stdout).toMatch(/statement 2 of 2/);
    // The same statement, explained for the CI identity: allowed by its own policy.
    const ci = await stack.cli(
      '/nonexistent-home',
      ['policy', 'test', '--connection', 'prod-db', '--sql', 'truncate orders', '--json'],
      { env: stack.ciEnv() },
    );
    expect(ci.code, ci.stderr).toBe(0);
    expect(JSON.parse(ci.stdout)).toMatchObject({ decision: 'allow', policy: 'ci-deploy', rule: 'migrate' });
    // Usage errors are 2: an unknown connection.
    expect(
      (await stack.cli(alice, ['policy', 'test', ...offline, '--connection', 'nope', '--sql', 'select 1']))
        .code,
    ).toBe(2);
  }, 180_000); // fourteen CLI processes, one after another: slow on a loaded machine

  it('policy test --config with several issuers: a bare subject is answered when every issuer agrees', async () => {
    const config = join(stack.pg.dataDir, '..', 'two-issuers.yaml');
    writeFileSync(
      config,
      `listen: { insecure_loopback: true }
identity:
  issuers:
    - { issuer: https://a.example.com, audience: gw }
    - { issuer: https://b.example.com, audience: gw }
connections:
  - { name: prod-db, host: db, database: shop, user: hoop, password_env: P }
policies:
  - { name: eng, groups: [engineering], connections: [prod-db], rules: [{ name: reads, allow: [read] }] }
  - { name: bob, subjects: ["https://a.example.com#bob"], connections: [prod-db], rules: [{ name: w, allow: [write] }] }
`,
    );
    const test = (...args: string[]) =>
      stack.cli(alice, ['policy', 'test', '--config', config, '--connection', 'prod-db', ...args, '--json']);
    const alike = await test('--identity', 'alice', '--groups', 'engineering', '--sql', 'select 1');
    expect(alike.code, alike.stderr).toBe(0);
    expect(JSON.parse(alike.stdout).identity).toEqual({ subject: 'alice', groups: ['engineering'] });
    const depends = await test('--identity', 'bob', '--sql', 'delete from orders');
    expect(depends.code).toBe(2);
    expect(depends.stderr).toMatch(/depends on its issuer .* give --issuer/);
    const named = await test(
      '--identity',
      'bob',
      '--issuer',
      'https://a.example.com',
      '--sql',
      'delete from orders',
    );
    expect(named.code, named.stderr).toBe(0);
    expect(JSON.parse(named.stdout)).toMatchObject({ decision: 'allow', rule: 'w' });
  });

  it('hoopctl connections shows each connection with the rules that apply to me', async () => {
    const mine = await stack.cli(alice, ['connections', '--json']);
    expect(mine.code, mine.stderr).toBe(0);
    const views = JSON.parse(mine.stdout);
    expect(views.map((v: { name: string }) => v.name)).toEqual(['prod-db']);
    expect(views[0].policies.map((p: { name: string }) => p.name)).toEqual(['read-only']);
    expect(views[0].policies[0].rules).toMatchObject([
      { name: 'reads', action: 'allow', classes: ['read', 'transaction', 'session'] },
      { name: 'no-changes', action: 'deny' },
    ]);
    const text = await stack.cli(alice, ['connections']);
    expect(text.stdout).toMatch(/prod-db/);
    expect(text.stdout).toMatch(/allow\s+read, transaction, session\s+reads/);
    expect(text.stdout).toMatch(/deny\s+everything else\s+default-deny/);
    expect(text.stdout).not.toMatch(/migrate|read-write/); // other people's rules are not mine
    const ci = await stack.cli('/nonexistent-home', ['connections', '--json'], { env: stack.ciEnv() });
    expect(ci.code, ci.stderr).toBe(0);
    const ciViews = JSON.parse(ci.stdout);
    expect(ciViews[0].policies.map((p: { name: string }) => p.name)).toEqual(['ci-deploy']);
    expect(ciViews[0].policies[0].rules).toMatchObject([{ name: 'migrate', action: 'allow' }]);
  });

  it('a named statement the database failed to create is forgotten: the gate checks what Postgres will run', async () => {
    // rita may write. Parse "s" fails in Postgres (no such column) but the gateway must not keep
    // that text under "s": the next Parse of "s" (a DELETE) is what Bind/Execute will run, and what
    // the gate must check, record (and later mask or send for approval).
    const rita = await stack.login('rita@example.com');
    const ritaTunnel = await stack.connect(rita);
    const raw = await openRaw(ritaTunnel.port, ritaTunnel.password);
    try {
      raw.send(serialize.parse({ name: 's', text: 'select no_such_column from scratch' }), serialize.sync());
      expect(shape(await raw.untilReady())).toEqual(['E:42703', 'Z:I']);
      raw.send(
        serialize.parse({ name: 's', text: 'delete from scratch where id = 2 returning id' }),
        serialize.sync(),
      );
      expect(shape(await raw.untilReady())).toEqual(['1', 'Z:I']);
      raw.send(serialize.bind({ statement: 's' }), serialize.execute({}), serialize.sync());
      expect(shape(await raw.untilReady())).toEqual(['2', 'D', 'C', 'Z:I']);
    } finally {
      raw.close();
      ritaTunnel.stop();
    }
    const auditor = await stack.login('aubrey@example.com');
    const exported = await stack.cli(auditor, ['sessions', 'export', '--since', '1h', '--format', 'jsonl']);
    expect(exported.code, exported.stderr).toBe(0);
    const texts = exported.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line).record)
      .filter((r) => r && r.type === 'statement' && r.identity?.subject === 'rita@example.com')
      .map((r) => r.data.text);
    expect(texts).toEqual(['delete from scratch where id = 2 returning id']);
    stack.pg.psql("INSERT INTO public.scratch VALUES (2, 'two')", 'shop');
  });

  it('no denied text ever reached PostgreSQL (log_statement=all)', () => {
    const log = readFileSync(join(stack.pg.dataDir, '..', 'postgres.log'), 'utf8');
    expect(marker).toBeGreaterThan(ATTEMPTS.length * 3);
    expect(log).toContain('HOOP STATEMENT REFUSED BY THE GATEWAY'); // the poison did
    expect(log).toContain('select count(*) from customers'); // and allowed statements
    expect(log.match(/deny-marker-\d+/g) ?? []).toEqual([]);
    expect(snapshot()).toBe(before);
    expect(stack.pg.psql('select gid from pg_prepared_xacts', 'shop').trim()).toBe('hoop-victim');
  });
});
