/**
 * Issue 13 item 1 and issue 12 item 3 on the wire. Startup parameters are session state: each one a
 * client sends is judged like the equivalent SET, applied upstream and reflected in ParameterStatus,
 * or refused with a FATAL naming it. A read-only identity's session runs upstream with
 * default_transaction_read_only held on by the gateway, so Postgres itself answers 25006 to a write
 * the classifier cannot see. Real clients: psql, node-postgres, psycopg 3, pgjdbc.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psql } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

/** Alice may read and write; Aubrey (audit) may only read: her sessions are read-only upstream. */
const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: work, allow: [read, write, transaction, session] }
  - name: readers
    groups: [audit]
    connections: [prod-db]
    audit: true
    rules:
      - { name: reads, allow: [read, transaction, session] }
`;

/**
 * A function the classifier cannot see into (LANGUAGE internal, declared STABLE, so a read to it)
 * that writes: it is nextval. Only Postgres's own read-only transaction stops it.
 */
const SETUP_SQL = `
CREATE FUNCTION public.innocent(regclass) RETURNS bigint LANGUAGE internal STABLE STRICT AS 'nextval_oid';
SET ROLE hoop_gateway;
CREATE SEQUENCE public.ticket_seq;
CREATE SCHEMA app;
CREATE TABLE app.widgets (id int);
`;

const JDBC_JAR = '/usr/share/java/postgresql.jar';

let stack: Stack;
let alice: Tunnel;
let aubrey: Tunnel;

beforeAll(async () => {
  stack = await startStack({ policies: POLICIES });
  stack.pg.psql(SETUP_SQL, 'shop');
  alice = await stack.connect(await stack.login('alice@example.com'));
  aubrey = await stack.connect(await stack.login('aubrey@example.com'));
}, 180_000);

afterAll(async () => {
  alice?.stop();
  aubrey?.stop();
  await stack?.stop();
});

/** A node-postgres client that records the ParameterStatus messages it receives. */
async function client(tunnel: Tunnel, config: pg.ClientConfig = {}) {
  const c = new pg.Client({ connectionString: tunnel.url, ...config });
  const status: Record<string, string> = {};
  (
    c as unknown as { connection: { on(e: string, f: (m: Record<string, string>) => void): void } }
  ).connection.on('parameterStatus', (m) => {
    status[m.parameterName!] = m.parameterValue!;
  });
  await c.connect();
  return { c, status };
}

describe('a read-only identity runs read-only upstream', () => {
  it('default_transaction_read_only is on, reported in ParameterStatus, and no client route turns it off', async () => {
    const { c, status } = await client(aubrey);
    try {
      expect(status.default_transaction_read_only).toBe('on');
      expect((await c.query('show default_transaction_read_only')).rows).toEqual([
        { default_transaction_read_only: 'on' },
      ]);
      for (const sql of [
        'set default_transaction_read_only = off',
        'set session characteristics as transaction read write',
        "select set_config('default_transaction_read_only', 'off', false)",
        'begin read write',
        'start transaction read write',
      ]) {
        await expect(c.query(sql), sql).rejects.toMatchObject({
          code: '42501',
          message: expect.stringContaining('"read-only-session"'),
        });
      }
      await c.query('begin');
      await expect(c.query('set transaction read write')).rejects.toMatchObject({ code: '42501' });
      await c.query('rollback');
      // Resetting it keeps it on: the gateway set it as the session's starting value.
      await c.query('reset default_transaction_read_only');
      await c.query('reset all');
      expect((await c.query('show default_transaction_read_only')).rows[0]).toEqual({
        default_transaction_read_only: 'on',
      });
    } finally {
      await c.end();
    }
  });

  it('a write the classifier cannot see (a STABLE internal function that is nextval) gets 25006 from Postgres', async () => {
    const before = stack.pg.psql('select last_value from ticket_seq', 'shop').trim();
    const { c } = await client(aubrey);
    try {
      await expect(c.query("select public.innocent('ticket_seq')")).rejects.toMatchObject({
        code: '25006',
        message: expect.stringMatching(/read-only transaction/),
      });
    } finally {
      await c.end();
    }
    expect(stack.pg.psql('select last_value from ticket_seq', 'shop').trim()).toBe(before);
    // Alice may write: her session is not held read-only.
    const { c: writer } = await client(alice);
    try {
      expect((await writer.query("select public.innocent('ticket_seq') as n")).rows[0].n).toBe('1');
    } finally {
      await writer.end();
    }
  });

  it('asking for a read-write session at startup is refused with a FATAL that names the parameter', () => {
    const r = psql(aubrey.url, ['-c', 'select 1'], {
      env: { PGOPTIONS: '-c default_transaction_read_only=off' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /FATAL: {2}hoop: startup parameter "default_transaction_read_only" refused by rule "read-only-session"/,
    );
  });
});

describe('startup parameters are session state', () => {
  it('psql: PGOPTIONS statement_timeout takes effect (57014), DateStyle shows in SHOW', () => {
    const env = { PGOPTIONS: '-c statement_timeout=50 --DateStyle=German' };
    const r = psql(
      alice.url,
      ['-At', '-v', 'VERBOSITY=verbose', '-c', 'show datestyle', '-c', 'select pg_sleep(1)'],
      {
        env,
      },
    );
    expect(r.stdout.trim()).toBe('German, DMY');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ERROR: {2}57014: canceling statement due to statement timeout/);
  });

  it('node-postgres: statement_timeout, idle_in_transaction_session_timeout, options -c ... and search_path', async () => {
    const { c, status } = await client(alice, {
      statement_timeout: 50,
      idle_in_transaction_session_timeout: 100_000,
      options: '-c default_transaction_isolation=serializable -c search_path=app,public',
      application_name: 'names-test',
    });
    try {
      expect(status.application_name).toBe('names-test');
      const show = async (name: string) => Object.values((await c.query(`show ${name}`)).rows[0])[0];
      expect(await show('transaction_isolation')).toBe('serializable');
      expect(await show('idle_in_transaction_session_timeout')).toBe('100s');
      expect(await show('search_path')).toBe('app,public');
      expect((await c.query('select count(*)::int as n from widgets')).rows).toEqual([{ n: 0 }]);
      await expect(c.query('select pg_sleep(1)')).rejects.toMatchObject({ code: '57014' });
    } finally {
      await c.end();
    }
  });

  it('psycopg 3: options= applies; a refused one ends the connection naming the parameter and rule', () => {
    const code = `
import sys, psycopg
with psycopg.connect(sys.argv[1], options='-c statement_timeout=50 -c lock_timeout=2s', autocommit=True) as conn:
    print(conn.execute('show statement_timeout').fetchone()[0], conn.execute('show lock_timeout').fetchone()[0])
try:
    psycopg.connect(sys.argv[1], options='-c role=postgres')
    print('connected')
except psycopg.OperationalError as e:
    print('refused', str(e).replace(chr(10), ' '))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', code, alice.url], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const [applied, refused] = r.stdout.trim().split('\n');
    expect(applied).toBe('50ms 2s');
    expect(refused).toMatch(/^refused .*startup parameter "role" refused by rule "builtin-deny-list"/);
  });

  it('pgjdbc: options and currentSchema take effect', () => {
    const work = mkdtempSync(join(tmpdir(), 'jdbc-'));
    writeFileSync(
      join(work, 'Settings.java'),
      `import java.sql.*;
public class Settings {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0]); Statement s = c.createStatement()) {
      for (String q : new String[] {"show statement_timeout", "show search_path", "select count(*) from widgets"}) {
        try (ResultSet r = s.executeQuery(q)) { r.next(); System.out.println(r.getString(1)); }
      }
    }
  }
}
`,
    );
    const javac = spawnSync('javac', ['-cp', JDBC_JAR, '-d', work, join(work, 'Settings.java')], {
      encoding: 'utf8',
    });
    expect(javac.status, javac.stderr).toBe(0);
    const url = `jdbc:postgresql://127.0.0.1:${alice.port}/prod-db?user=hoop&password=${encodeURIComponent(alice.password)}&sslmode=disable&options=${encodeURIComponent('-c statement_timeout=1500')}&currentSchema=app`;
    const r = spawnSync('java', ['-cp', `${JDBC_JAR}:${work}`, 'Settings', url], {
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['1500ms', 'app', '0']);
  });
});
