/**
 * Errors reach the client as PostgreSQL sends them, whatever the position (issues 12 and 13), compared
 * with the same client talking to PostgreSQL directly:
 * - a statement the gateway's parser rejects is never forwarded, yet psql prints exactly what it prints
 *   without the gateway (42601, the parser's message, LINE n: and the caret), multi-line and multibyte;
 * - a statement cancelled by statement_timeout (simple, extended, pipelined; in and out of a block, and
 *   by SET LOCAL in a block), by pg_cancel_backend from elsewhere, an error in the middle of a result,
 *   idle_in_transaction_session_timeout and pg_terminate_backend ending the session: same messages,
 *   same SQLSTATE, same following state, no hang.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL_POLICIES, psql } from '../harness/clients.js';
import { fieldsOf, RawPg, render } from '../harness/raw-pg.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const { parse, bind, execute, sync, query } = serialize;
const cat = (...parts: Buffer[]) => Buffer.concat(parts);

describe('errors in every position, gateway vs PostgreSQL directly', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  let directUrl: string;

  beforeAll(async () => {
    stack = await startStack({ policies: ALLOW_ALL_POLICIES, pgSettings: { log_statement: "'all'" } });
    tunnel = await stack.connect(await stack.login('alice@example.com'));
    directUrl = `postgresql://hoop_gateway:${stack.dbPassword}@127.0.0.1:${stack.pg.port}/shop`;
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  const viaGateway = () =>
    RawPg.connect({ port: tunnel.port, user: 'hoop', database: 'prod-db', password: tunnel.password });
  const direct = () =>
    RawPg.connect({
      port: stack.pg.port,
      user: 'hoop_gateway',
      database: 'shop',
      password: stack.dbPassword,
    });

  /** The same exchanges on both; the rendered answers (error positions included) must be identical. */
  async function same(steps: { send: Buffer; readies?: number }[], withPositions = false): Promise<string[]> {
    const results: string[][] = [];
    for (const open of [direct, viaGateway]) {
      const c = await open();
      const out: string[] = [];
      try {
        for (const step of steps) {
          const messages = await c.exchange(step.send, step.readies ?? 1);
          out.push(...render(messages));
          if (withPositions)
            for (const m of messages.filter((x) => x.type === 'E'))
              out.push(`P=${fieldsOf(m.body).P ?? '-'}`);
        }
      } finally {
        c.close();
      }
      results.push(out);
    }
    expect(results[1]).toEqual(results[0]);
    return results[0]!;
  }

  describe('syntax errors look like PostgreSQL’s', () => {
    const cases = [
      'selec 1',
      'select 1 frm customers where',
      "select 'héllo wörld', 'ünïcödé — ✓' frm customers",
      'select 1,\n       2,\n       3 frm\n  customers\n where id = 1',
      "select 'never closed",
      'select 1; selec 2',
      `select ${'a_long_column_name, '.repeat(12)}x frm customers`,
      'select "unterminated identifier',
      'select 1 /* never closed',
      "select 'a' 'b' from (",
    ];

    it('psql prints the same error, LINE and caret, through the gateway', () => {
      for (const sql of cases) {
        const a = psql(directUrl, ['-c', sql]);
        const b = psql(tunnel.url, ['-c', sql]);
        expect(a.stderr, sql).toMatch(/ERROR: {2}(syntax error|unterminated)/);
        expect(b.stderr, sql).toBe(a.stderr);
        expect(b.status, sql).toBe(a.status);
      }
    });

    it('the protocol answer is 42601 with the same message and position, simple and extended', async () => {
      const steps = cases.flatMap((sql) => [
        { send: query(sql) },
        { send: cat(parse({ name: 'named', text: sql }), sync()) },
        { send: cat(parse({ text: sql }), bind({}), execute({}), sync()) },
      ]);
      const out = await same(steps, true);
      expect(out.filter((l) => l.startsWith('E ERROR 42601'))).toHaveLength(cases.length * 3);
    });

    it('node-postgres gets code 42601 and the position', async () => {
      const client = new pg.Client({ connectionString: tunnel.url });
      await client.connect();
      try {
        const err = (await client.query('select 1 frm customers').catch((e) => e)) as pg.DatabaseError;
        expect(err.code).toBe('42601');
        expect(err.message).toBe('syntax error at or near "customers"');
        expect(err.position).toBe('14');
        expect((await client.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
      } finally {
        await client.end();
      }
    });

    it('no rejected text reached PostgreSQL: only the poison did', async () => {
      const c = await viaGateway();
      await c.exchange(query("select 'gateway-only-marker' frm customers"));
      await c.exchange(cat(parse({ text: "selec 'gateway-only-marker'" }), sync()));
      c.close();
      const log = readFileSync(join(stack.pg.dataDir, '..', 'postgres.log'), 'utf8');
      expect(log).toContain('HOOP STATEMENT REFUSED BY THE GATEWAY');
      expect(log).not.toContain('gateway-only-marker');
    });
  });

  describe('server errors pass as the server sent them', () => {
    it('statement_timeout: simple and extended, in and out of a block, SET LOCAL, pipelined', async () => {
      await same([
        { send: query("set statement_timeout = '150ms'") },
        { send: query('select pg_sleep(2)') },
        { send: query('select 1') },
        { send: cat(parse({ text: 'select pg_sleep($1)' }), bind({ values: ['2'] }), execute({}), sync()) },
        { send: query('begin') },
        { send: query('select pg_sleep(2)') },
        { send: query('select 1') }, // 25P02: the block is aborted
        { send: query('rollback') },
        { send: query('reset statement_timeout') },
        { send: query("begin; set local statement_timeout = '150ms'") },
        { send: query('select pg_sleep(2)') },
        { send: query('rollback') },
        { send: query('begin') },
        { send: query("set local statement_timeout = '150ms'") },
        { send: cat(parse({ text: 'select pg_sleep(2)' }), bind({}), execute({}), sync()) },
        { send: query('rollback') },
        {
          send: cat(
            query("set statement_timeout = '150ms'"),
            parse({ name: 'quick', text: 'select 1' }),
            bind({ statement: 'quick' }),
            execute({}),
            parse({ text: 'select pg_sleep(2)' }),
            bind({}),
            execute({}),
            bind({ statement: 'quick' }),
            execute({}),
            sync(),
            bind({ statement: 'quick' }),
            execute({}),
            sync(),
          ),
          readies: 3,
        },
      ]);
    });

    it('node-postgres: SET LOCAL statement_timeout in a transaction gives 57014, not a hang', async () => {
      for (const url of [directUrl, tunnel.url]) {
        const client = new pg.Client({ connectionString: url, query_timeout: 10_000 });
        await client.connect();
        try {
          await client.query('begin');
          await client.query("set local statement_timeout = '150ms'");
          const simple = (await client.query('select pg_sleep(3)').catch((e) => e)) as pg.DatabaseError;
          expect(simple.code, url).toBe('57014');
          await client.query('rollback');
          await client.query('begin');
          await client.query("set local statement_timeout = '150ms'");
          const extended = (await client
            .query('select pg_sleep($1)', [3])
            .catch((e) => e)) as pg.DatabaseError;
          expect(extended.code, url).toBe('57014');
          const after = (await client.query('select 1').catch((e) => e)) as pg.DatabaseError;
          expect(after.code).toBe('25P02');
          await client.query('rollback');
          expect((await client.query('select 2 as ok')).rows).toEqual([{ ok: 2 }]);
        } finally {
          await client.end();
        }
      }
    });

    it('psql: a statement cancelled by SET LOCAL statement_timeout prints the same error', () => {
      const script =
        "begin;\nset local statement_timeout = '150ms';\nselect pg_sleep(3);\nselect 1;\nrollback;\n";
      const a = psql(directUrl, ['-v', 'ON_ERROR_STOP=0', '-f', '-'], { input: script });
      const b = psql(tunnel.url, ['-v', 'ON_ERROR_STOP=0', '-f', '-'], { input: script });
      expect(a.stderr).toMatch(/canceling statement due to statement timeout/);
      expect(b.stderr).toBe(a.stderr);
      expect(b.stdout).toBe(a.stdout);
    });

    it('an error in the middle of a result: the rows before it, then the error', async () => {
      const sql = 'select case when x = 3 then 1/0 else x end from generate_series(1, 5) x';
      const out = await same([
        { send: query(sql) },
        { send: cat(parse({ text: sql }), bind({}), execute({}), sync()) },
        { send: cat(parse({ text: sql }), bind({}), execute({ rows: 1 }), execute({ rows: 5 }), sync()) },
      ]);
      expect(out.filter((l) => l.startsWith('E ERROR 22012'))).toHaveLength(3);
    });

    it('pg_cancel_backend from another session cancels the statement: 57014, the session goes on', async () => {
      for (const open of [direct, viaGateway]) {
        const c = await open();
        const pidRow = (await c.exchange(query('select pg_backend_pid()'))).find((m) => m.type === 'D')!;
        const pid = pidRow.body.toString('utf8', 6);
        c.socket.write(query('select pg_sleep(10)'));
        await new Promise((r) => setTimeout(r, 300));
        stack.pg.psql(`select pg_cancel_backend(${pid})`);
        await c.until(() => c.messages.some((m) => m.type === 'Z'));
        const out = render(c.messages.splice(0));
        expect(out).toContain('E ERROR 57014 canceling statement due to user request');
        expect(render(await c.exchange(query('select 1 as ok')))).toContain('C SELECT 1');
        c.close();
      }
    });

    it('idle_in_transaction_session_timeout and pg_terminate_backend end the session with the server’s FATAL', async () => {
      const ends: string[][] = [];
      for (const open of [direct, viaGateway]) {
        const c = await open();
        await c.exchange(query("set idle_in_transaction_session_timeout = '200ms'"));
        await c.exchange(query('begin'));
        await c.until(() => c.closed, 10_000);
        ends.push(render(c.messages.splice(0)));
        const d = await open();
        const pidRow = (await d.exchange(query('select pg_backend_pid()'))).find((m) => m.type === 'D')!;
        stack.pg.psql(`select pg_terminate_backend(${pidRow.body.toString('utf8', 6)})`);
        await d.until(() => d.closed, 10_000);
        ends.push(render(d.messages.splice(0)));
      }
      expect(ends[0]).toEqual(['E FATAL 25P03 terminating connection due to idle-in-transaction timeout']);
      expect(ends[1]).toEqual(['E FATAL 57P01 terminating connection due to administrator command']);
      expect(ends[2]).toEqual(ends[0]);
      expect(ends[3]).toEqual(ends[1]);
    });
  });
});
