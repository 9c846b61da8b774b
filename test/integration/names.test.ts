/**
 * Issue 12, items 2 and 3 on the wire. Names resolve the way the server resolves them: search_path is
 * an ordinary session setting the gateway follows (SET, SET LOCAL, RESET, set_config, rollbacks,
 * savepoints, startup options, pipelines), so a rule about `secret.*` catches `customers` once the path
 * makes it `secret.customers`, and `"Vault"` is not `vault`. Reads that write are writes: a function
 * whose body deletes needs approval. pg_dump works under a read + copy-out policy and gives the same
 * dump as direct. Real PostgreSQL, IdP, gateway, CLI; psql, node-postgres, postgres.js, pg_dump.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScramClient } from '../../src/shared/scram.js';
import { psql } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

/**
 * Alice (engineering) may read, except the `secret` schema and `public.vault` (any case); rita
 * (db-reviewers) is allowed public.vault and denied public."Vault", exactly; ci-bot (ci-deploy) may
 * read and copy out, which is what pg_dump needs — no side-channel exceptions.
 */
const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: no-secrets, deny: [read, write], relations: ["secret.*", "public.vault"] }
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], timeout: 30m }
      - { name: no-admin, deny: [admin, dcl, copy-out, procedural] }
  - name: dumpers
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: dump, allow: [read, copy-out, transaction, session] }
  - name: vault-keepers
    groups: [db-reviewers]
    connections: [prod-db]
    rules:
      - { name: exact-vault, allow: [read], relations: [public.vault] }
      - { name: no-other-vault, deny: [read], relations: ['public."Vault"'] }
      - { name: reads, allow: [read, session, transaction] }
    review: true
  - name: auditors
    groups: [audit]
    audit: true
`;

const SETUP_SQL = `
SET ROLE hoop_gateway;
CREATE SCHEMA secret;
CREATE TABLE secret.customers (id int, ssn text);
INSERT INTO secret.customers VALUES (1, 'real-secret');
CREATE SCHEMA "Secret";
CREATE TABLE "Secret".customers (id int, note text);
CREATE TABLE public."Vault" (id int);
CREATE TABLE public.vault (id int);
CREATE FUNCTION public.forget_orders() RETURNS int LANGUAGE sql AS $$ DELETE FROM public.orders WHERE id > 45 RETURNING 1 $$;
CREATE FUNCTION public.count_orders() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM orders $$;
CREATE FUNCTION public.pl_forget() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM orders WHERE id > 45; RETURN 1; END $$;
CREATE FUNCTION public.pl_dynamic() RETURNS int LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'select 1'; RETURN 1; END $$;
CREATE VIEW public.order_totals AS SELECT customer_id, sum(total_cents) AS total FROM orders GROUP BY customer_id;
CREATE SEQUENCE public.ticket_seq;
`;

let stack: Stack;
let alice: string;
let aliceTunnel: Tunnel;

/** One psql session fed a script; ON_ERROR_STOP makes it stop (exit 3) at the first refusal. */
const script = (tunnel: Tunnel, sql: string, env?: Record<string, string>) =>
  psql(tunnel.url, ['-At'], { input: sql, env });

interface Msg {
  type: string;
  body: Buffer;
}

/** A bare protocol client (startup, the tunnel's one-time password by SCRAM), for pipelines. */
async function openRaw(port: number, password: string) {
  const socket: Socket = netConnect({ host: '127.0.0.1', port });
  let pending = Buffer.alloc(0);
  const messages: Msg[] = [];
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 1 + pending.readInt32BE(1)) {
      const length = pending.readInt32BE(1);
      messages.push({ type: String.fromCharCode(pending[0]!), body: pending.subarray(5, 1 + length) });
      pending = pending.subarray(1 + length);
    }
  });
  const next = async (): Promise<Msg> => {
    const deadline = Date.now() + 30_000;
    while (messages.length === 0) {
      if (Date.now() > deadline || socket.destroyed) throw new Error('no message from the server');
      await new Promise((r) => setTimeout(r, 20));
    }
    return messages.shift()!;
  };
  await new Promise((r) => socket.once('connect', r));
  socket.write(serialize.startup({ user: 'hoop', database: 'prod-db' }));
  const scram = new ScramClient(password);
  for (;;) {
    const m = await next();
    if (m.type === 'E') throw new Error(`login failed: ${m.body.toString('utf8')}`);
    if (m.type === 'R' && m.body.readInt32BE(0) === 10) {
      socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
    }
    if (m.type === 'R' && m.body.readInt32BE(0) === 11) {
      socket.write(serialize.sendSCRAMClientFinalMessage(scram.final(m.body.toString('utf8', 4))));
    }
    if (m.type === 'Z') break;
  }
  return {
    send: (...buffers: Buffer[]) => socket.write(Buffer.concat(buffers)),
    async untilReady(n = 1) {
      const out: Msg[] = [];
      for (let seen = 0; seen < n; ) {
        const m = await next();
        out.push(m);
        if (m.type === 'Z') seen++;
      }
      return out;
    },
    close: () => socket.end(serialize.end()),
  };
}

const ciTunnel = () =>
  stack.connect(mkdtempSync(join(tmpdir(), 'ci-home-')), 'prod-db', { env: stack.ciEnv() });

beforeAll(async () => {
  stack = await startStack({ policies: POLICIES });
  stack.pg.psql(SETUP_SQL, 'shop');
  alice = await stack.login('alice@example.com');
  aliceTunnel = await stack.connect(alice);
}, 180_000);

afterAll(async () => {
  aliceTunnel?.stop();
  await stack?.stop();
});

describe('search_path is session state the gateway follows', () => {
  it('SET search_path is an ordinary statement; the names after it resolve through it', () => {
    expect(script(aliceTunnel, 'select count(*) from customers;\n').stdout.trim()).toBe('5');
    const r = script(aliceTunnel, 'set search_path = secret, public;\nselect * from customers;\n');
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/denied by rule "no-secrets" of policy "engineers"/);
    expect(r.stderr).toMatch(/on secret\.customers/);
    // set_config is the same setting by another road.
    const viaFunction = script(
      aliceTunnel,
      "select set_config('search_path', 'secret', false);\nselect * from customers;\n",
    );
    expect(viaFunction.stderr).toMatch(/denied by rule "no-secrets"[\s\S]*secret\.customers/);
  });

  it('a rolled-back SET, SET LOCAL after commit, ROLLBACK TO a savepoint and RESET all undo it', () => {
    for (const undo of [
      'begin;\nset search_path = secret;\nrollback;',
      'begin;\nset local search_path = secret;\ncommit;',
      'begin;\nsavepoint a;\nset search_path = secret;\nrollback to a;\ncommit;',
      'set search_path = secret;\nreset search_path;',
      'set search_path = secret;\nreset all;',
      'set search_path = secret;\ndiscard all;',
      "select set_config('search_path', 'secret', true);",
    ]) {
      const r = script(aliceTunnel, `${undo}\nselect count(*) from customers;\n`);
      expect(r.stderr, undo).toBe('');
      expect(r.stdout.trim().split('\n').pop(), undo).toBe('5');
    }
    // Committed, it stays.
    const kept = script(
      aliceTunnel,
      'begin;\nset search_path = secret;\ncommit;\nselect * from customers;\n',
    );
    expect(kept.stderr).toMatch(/no-secrets/);
  });

  it('a SET that fails with its implicit transaction (one Query) is undone with it', async () => {
    const client = new pg.Client({ connectionString: aliceTunnel.url });
    await client.connect();
    try {
      await expect(client.query('set search_path = secret; select 1/0')).rejects.toMatchObject({
        code: '22012',
      });
      expect((await client.query('show search_path')).rows).toEqual([{ search_path: '"$user", public' }]);
      expect((await client.query('select count(*)::int as n from customers')).rows).toEqual([{ n: 5 }]);
      // In the same message, the statement after the SET sees it.
      await expect(client.query('set search_path = secret; select * from customers')).rejects.toMatchObject({
        code: '42501',
      });
    } finally {
      await client.end();
    }
  });

  it('a SET undone by a later failure in its Sync group (a refused Parse) is undone for the gateway too', async () => {
    const raw = await openRaw(aliceTunnel.port, aliceTunnel.password);
    try {
      raw.send(serialize.query('set search_path = secret, public'));
      await raw.untilReady();
      // The SET runs, then a Parse fails (the gateway refuses unparseable text): Postgres rolls the
      // implicit transaction back, SET included. The gateway must not believe the path is public now.
      raw.send(
        serialize.parse({ text: 'set search_path = public' }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.parse({ text: 'selec broken' }),
        serialize.sync(),
      );
      await raw.untilReady();
      raw.send(serialize.query('show search_path'), serialize.query('select * from customers'));
      const out = await raw.untilReady(2);
      const texts = out.filter((m) => m.type === 'D').map((m) => m.body.toString('utf8', 6));
      expect(texts).toEqual(['secret, public']);
      const errors = out.filter((m) => m.type === 'E').map((m) => m.body.toString('utf8'));
      expect(errors.join('\n')).toMatch(/no-secrets/);
    } finally {
      raw.close();
    }
  });

  it('startup options set it too, and RESET returns to them', () => {
    const env = { PGOPTIONS: '-c search_path=secret,public' };
    expect(script(aliceTunnel, 'select * from customers;\n', env).stderr).toMatch(
      /no-secrets[\s\S]*secret\.customers/,
    );
    expect(script(aliceTunnel, 'reset search_path;\nselect * from customers;\n', env).stderr).toMatch(
      /no-secrets/,
    );
  });

  it('a pipelining client: the next statement resolves under every path the one in flight could leave', async () => {
    const sql = postgres(aliceTunnel.url, { max: 1, onnotice: () => {} });
    try {
      const [set, select] = await Promise.allSettled([
        sql.unsafe('set search_path = secret, public'),
        sql.unsafe('select * from customers'),
      ]);
      expect(set.status).toBe('fulfilled');
      expect(select).toMatchObject({ status: 'rejected', reason: { code: '42501' } });
    } finally {
      await sql.end();
    }
  });

  it('quoting keeps case: "Secret" is not secret, public."Vault" is not public.vault', async () => {
    // rita: allowed public.vault exactly, denied public."Vault" exactly, reads "Secret" freely.
    const rita = await stack.connect(await stack.login('rita@example.com'));
    try {
      expect(script(rita, 'select * from vault;\n').stderr).toBe('');
      expect(script(rita, 'select * from "Vault";\n').stderr).toMatch(/no-other-vault[\s\S]*public\."Vault"/);
      expect(script(rita, 'set search_path = "Secret";\nselect * from customers;\n').stderr).toBe('');
    } finally {
      rita.stop();
    }
    // Alice's deny rule names public.vault unquoted: a deny rule catches every case of it.
    expect(script(aliceTunnel, 'select * from "Vault";\n').stderr).toMatch(
      /no-secrets[\s\S]*public\."Vault"/,
    );
  });
});

describe('reads that write are writes', () => {
  const exec = (sql: string) =>
    stack.cli(alice, ['exec', 'prod-db', '--no-wait', '-c', sql], { timeoutMs: 60_000 });

  it('select f() where f deletes needs approval (SQL and PL/pgSQL bodies); f that counts is a read', async () => {
    for (const sql of ['select forget_orders()', 'select pl_forget()', 'select * from orders for update']) {
      const r = await exec(sql);
      expect(r.code, `${sql}\n${r.stderr}`).toBe(5);
      expect(r.stderr, sql).toMatch(/approval/i);
    }
    const count = script(aliceTunnel, 'select count_orders();\n');
    expect(count.stderr).toBe('');
    expect(count.stdout.trim()).toBe('50');
    // Code the gateway cannot see into is procedural: denied for engineers.
    expect(script(aliceTunnel, 'select pl_dynamic();\n').stderr).toMatch(/denied by rule "no-admin"/);
    expect(stack.pg.psql('select count(*) from orders', 'shop').trim()).toBe('50');
  });
});

describe('pg_dump through the gateway', () => {
  it('works under a read + copy-out policy and gives the same dump as direct', async () => {
    const ci = await ciTunnel();
    try {
      const dump = (url: string) =>
        spawnSync('pg_dump', ['--no-sync', url], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000 });
      const direct = dump(stack.pg.url('shop', 'hoop_gateway', stack.dbPassword));
      const through = dump(ci.url);
      expect(direct.status, direct.stderr).toBe(0);
      expect(through.stderr).toBe('');
      expect(through.status).toBe(0);
      // Lines that differ between any two dumps: timestamps, and the random key of \restrict/\unrestrict.
      const stable = (text: string) =>
        text.split('\n').filter((line) => !/^(-- (Dumped|Started|Completed)|\\(un)?restrict )/.test(line));
      expect(stable(through.stdout)).toEqual(stable(direct.stdout));
      expect(through.stdout).toMatch(/COPY public\.customers/);
    } finally {
      ci.stop();
    }
  });
});
