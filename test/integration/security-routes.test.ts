/**
 * Routes around the gateway that issue 12 does not list, tried as an attacker would, each a regression
 * test through the real path (raw protocol client or psql → hoopctl connect → gateway → PostgreSQL).
 * docs/security.md lists every route and the test that shows it fails safely.
 *
 * The identity is an engineer who may read (and COPY into tables), whose writes need a reviewer and
 * who sees SSNs, card numbers and emails masked.
 */
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldsOf, type RawMessage, RawPg, render } from '../harness/raw-pg.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const { parse, bind, execute, sync, flush, query, copyData, copyDone } = serialize;
const cat = (...parts: Buffer[]) => Buffer.concat(parts);
const text = (s: string) => Buffer.from(s);

const SSNS = ['000-12-3456', '000-98-7654', '000-45-6789', '000-11-2222', '000-33-4444'];

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session, copy-in] }
      - { name: changes-need-review, approve: [write], approvers: [db-reviewers], timeout: 3s }
      - { name: no-ddl, deny: [ddl, dcl, admin, procedural, copy-out] }
    masking:
      - { name: ssn-partial, columns: [public.customers.ssn], mask: partial }
      - { name: pan-partial, columns: [public.customers.card_pan], mask: partial }
      - { name: email-domain, columns: [public.customers.email], mask: email-domain }
  - name: auditors
    groups: [audit]
    audit: true
`;

const errors = (messages: RawMessage[]) =>
  messages.filter((m) => m.type === 'E').map((m) => fieldsOf(m.body));
const rows = (messages: RawMessage[]) =>
  messages
    .filter((m) => m.type === 'D')
    .map((m) => m.body.toString('utf8'))
    .join('\n');
function expectMasked(messages: RawMessage[], count = 5): void {
  expect(messages.filter((m) => m.type === 'D')).toHaveLength(count);
  const seen = rows(messages);
  for (const ssn of SSNS) expect(seen, `clear value ${ssn}`).not.toContain(ssn);
}

describe('routes around the gateway', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  const open = () =>
    RawPg.connect({ port: tunnel.port, user: 'hoop', database: 'prod-db', password: tunnel.password });
  const direct = () =>
    RawPg.connect({
      port: stack.pg.port,
      user: 'hoop_gateway',
      database: 'shop',
      password: stack.dbPassword,
    });

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES });
    tunnel = await stack.connect(await stack.login('alice@example.com'));
    stack.pg.psql(
      'create table public.inbox (id int, note text); alter table public.inbox owner to hoop_gateway',
      'shop',
    );
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  describe('protocol corners: every answer stays with its statement', () => {
    it('a Sync inside COPY FROM STDIN (ignored by PostgreSQL) does not shift the next answers: rows stay masked', async () => {
      const c = await open();
      c.socket.write(query('copy inbox from stdin'));
      await c.until(() => c.messages.some((m) => m.type === 'G'));
      await c.exchange(cat(sync(), copyData(text('1\tx\n')), sync(), copyDone()));
      expectMasked(await c.exchange(query('select ssn from customers')));
      expectMasked(await c.exchange(query('select 1 as one; select ssn from customers')), 6);
      c.close();
    });

    it('a Query sent while PostgreSQL discards up to Sync is not sent: rows stay masked', async () => {
      const c = await open();
      c.socket.write(cat(bind({ statement: 'nope' }), flush()));
      await c.until(() => c.messages.some((m) => m.type === 'E'));
      c.socket.write(query('select 1'));
      const out = await c.exchange(sync());
      expect(render(out)).toEqual(['E ERROR 26000 prepared statement "nope" does not exist', 'Z I']);
      expectMasked(await c.exchange(query('select ssn from customers')));
      c.close();
    });

    it('any other message inside COPY FROM STDIN ends the session, as PostgreSQL itself does', async () => {
      const c = await open();
      c.socket.write(query('copy inbox from stdin'));
      await c.until(() => c.messages.some((m) => m.type === 'G'));
      c.socket.write(query('select ssn from customers'));
      await c.until(() => c.closed);
      expect(errors(c.messages).at(-1)).toMatchObject({ S: 'FATAL', C: '08P01' });
      expect(rows(c.messages)).toBe('');
    });

    it('COPY as libpq sends it (extended protocol, Sync at once, Sync after CopyDone) answers as PostgreSQL does', async () => {
      const steps = [
        cat(parse({ text: 'copy inbox from stdin' }), bind({}), execute({}), sync()),
        cat(copyData(text('2\ttwo\n')), copyDone(), sync()),
        cat(query('copy inbox from stdin'), copyData(text('oops\n')), copyData(text('3\tx\n')), copyDone()),
        query("select 'after' as done"),
      ];
      const answers: string[][] = [];
      for (const connect of [direct, open]) {
        const c = await connect();
        const out: string[] = [];
        c.socket.write(steps[0]!);
        await c.until(() => c.messages.some((m) => m.type === 'G'));
        out.push(...render(c.messages.splice(0)));
        for (const step of steps.slice(1)) out.push(...render(await c.exchange(step)));
        c.close();
        answers.push(out.map((line) => line.replace(/COPY inbox, line \d+.*$/, '')));
      }
      expect(answers[1]).toEqual(answers[0]);
      expect(answers[0]).toContain('C COPY 1');
    });
  });
});
