/**
 * Issue 12's routes around the gateway through the session's named objects, each a regression test
 * through the real gateway (raw protocol client → hoopctl connect → gateway → PostgreSQL): mixing
 * SQL PREPARE/EXECUTE/DEALLOCATE/DECLARE/CLOSE with protocol Parse/Bind/Close/Execute must never let
 * the gateway judge one text while PostgreSQL runs another.
 */
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorsOf, fieldsOf, RawPg, rowsText } from '../harness/raw-pg.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const { parse, bind, execute, close, sync, query } = serialize;
const cat = (...parts: Buffer[]) => Buffer.concat(parts);

const SSNS = ['000-12-3456', '000-98-7654', '000-45-6789', '000-11-2222', '000-33-4444'];
const PANS = [
  '4111111111111111',
  '5555555555554444',
  '378282246310005',
  '6011111111111117',
  '4012888888881881',
];
const EMAIL_LOCALS = ['ada@', 'brian@', 'chloe@', 'dev@', 'eve@'];

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write], approvers: [db-reviewers], timeout: 3s }
      - { name: no-ddl, deny: [ddl, dcl, admin] }
    masking:
      - { name: pan-partial, columns: [public.customers.card_pan], mask: partial }
      - { name: ssn-partial, columns: [public.customers.ssn], mask: partial }
      - { name: email-domain, columns: [public.customers.email], mask: email-domain }
  - name: auditors
    groups: [audit]
    audit: true
`;

const errors = errorsOf;

function expectNoClearValue(text: string): void {
  for (const v of [...SSNS, ...PANS, ...EMAIL_LOCALS]) expect(text, `clear value ${v}`).not.toContain(v);
}

describe('routes through the session’s named objects', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  let auditor: string;
  const open = () =>
    RawPg.connect({ port: tunnel.port, user: 'hoop', database: 'prod-db', password: tunnel.password });
  const orders = () => Number(stack.pg.psql('select count(*) from public.orders', 'shop').trim());

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES });
    tunnel = await stack.connect(await stack.login('alice@example.com'));
    auditor = await stack.login('aubrey@example.com');
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('PREPARE s1 AS SELECT 1, protocol Close + Parse s1 = DELETE, then EXECUTE s1: held for approval as the DELETE, recorded as a write', async () => {
    const before = orders();
    const c = await open();
    await c.exchange(query('prepare s1 as select 1'));
    await c.exchange(cat(close({ type: 'S', name: 's1' }), sync()));
    await c.exchange(cat(parse({ name: 's1', text: 'delete from orders where id > 40' }), sync()));
    const executed = await c.exchange(query('execute s1'), 1, 30_000);
    const notices = executed.filter((m) => m.type === 'N').map((m) => fieldsOf(m.body));
    expect(notices[0]?.R).toBe('hoop_approval_waiting');
    expect(errors(executed)[0]).toMatchObject({ C: '57014', R: 'hoop_approval_expired' });
    c.close();
    expect(orders()).toBe(before);
    const exec = (await statementRecords()).filter((r) => r.text === 'execute s1').at(-1);
    expect(exec).toMatchObject({
      class: 'write',
      decision: 'approve',
      relations: ['public.orders'],
      runs: 'delete from orders where id > 40',
    });
  });

  it('pipelined without waiting for replies: the name is unknown, and every use of it is refused', async () => {
    const c = await open();
    await c.exchange(query('prepare s9 as select 1'));
    c.socket.write(
      cat(
        close({ type: 'S', name: 's9' }),
        sync(),
        parse({ name: 's9', text: 'select ssn from customers' }),
        sync(),
        bind({ statement: 's9' }),
        execute({}),
        sync(),
      ),
    );
    await c.until(() => c.messages.filter((m) => m.type === 'Z').length >= 3);
    const out = c.messages.splice(0);
    // Either the replies came back before the Bind was read (then it runs, masked) or it was refused.
    const refused = errors(out).find((e) => e.R === 'hoop_name_unknown');
    if (!refused) expectNoClearValue(rowsText(out));
    c.close();
  });

  it('Parse s2 = harmless SELECT, SQL DEALLOCATE s2; PREPARE s2 AS SELECT ssn, then Bind s2 + Execute: masked', async () => {
    const c = await open();
    await c.exchange(cat(parse({ name: 's2', text: 'select 1 as x' }), sync()));
    await c.exchange(query('deallocate s2; prepare s2 as select ssn as x, card_pan, email from customers'));
    const out = await c.exchange(cat(bind({ statement: 's2' }), execute({}), sync()));
    expect(errors(out)).toEqual([]);
    expect(out.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(out));
    c.close();
    await expectNoClearValueRecorded();
  });

  it('Bind portal c, then SQL CLOSE c; DECLARE c CURSOR FOR SELECT ssn, card_pan, email, then Execute c: masked', async () => {
    const c = await open();
    await c.exchange(query('begin'));
    await c.exchange(
      cat(parse({ name: 'h', text: 'select 1' }), bind({ portal: 'c', statement: 'h' }), sync()),
    );
    await c.exchange(query('close c; declare c cursor for select ssn, card_pan, email from customers'));
    const out = await c.exchange(cat(execute({ portal: 'c' }), sync()));
    expect(errors(out)).toEqual([]);
    expect(out.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(out));
    // And SQL FETCH of a protocol portal runs what the portal was bound to.
    await c.exchange(
      cat(
        parse({ name: 'secret', text: 'select ssn from customers' }),
        bind({ portal: 'p', statement: 'secret' }),
        sync(),
      ),
    );
    const fetched = await c.exchange(query('fetch all from p'));
    expect(errors(fetched)).toEqual([]);
    expect(fetched.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(fetched));
    await c.exchange(query('rollback'));
    c.close();
    await expectNoClearValueRecorded();
  });

  it('EXECUTE of a statement prepared by the protocol is masked like its text', async () => {
    const c = await open();
    await c.exchange(cat(parse({ name: 'p3', text: 'select ssn, email from customers' }), sync()));
    const out = await c.exchange(query('execute p3'));
    expect(errors(out)).toEqual([]);
    expect(out.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(out));
    c.close();
  });

  it('names that differ only in case ("S1" and s1, "C" and c) are two objects: each is masked as its own text', async () => {
    // PostgreSQL folds unquoted names and keeps quoted ones: "S1" is not s1. `|| ''` leaves the
    // RowDescription without a table column, so only the statement's lineage can mask it.
    const c = await open();
    await c.exchange(query(`prepare s1 as select 'harmless' || '' as x`));
    await c.exchange(query(`prepare "S1" as select ssn || '' as x from customers`));
    const executed = await c.exchange(query('execute "S1"'));
    expect(errors(executed)).toEqual([]);
    expect(executed.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(executed));
    // The protocol's names are exact too: Bind of "S1", then SQL EXECUTE of it.
    await c.exchange(cat(parse({ name: 'P2', text: `select email || '' as x from customers` }), sync()));
    await c.exchange(query(`prepare p2 as select 'harmless' || '' as x`));
    const protocol = await c.exchange(query('execute "P2"'));
    expect(protocol.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(protocol));
    await c.exchange(query('begin'));
    await c.exchange(query(`declare c cursor for select 'harmless' || '' as x from customers`));
    await c.exchange(query(`declare "C" cursor for select card_pan || '' as x from customers`));
    const fetched = await c.exchange(query('fetch all from "C"'));
    expect(errors(fetched)).toEqual([]);
    expect(fetched.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(fetched));
    await c.exchange(query('rollback'));
    c.close();
  });

  async function statementRecords(): Promise<Record<string, unknown>[]> {
    const r = await stack.cli(auditor, ['sessions', 'export', '--since', '1h', '--format', 'jsonl']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line).record)
      .filter((rec) => rec?.type === 'statement')
      .map((rec) => rec.data);
  }

  async function expectNoClearValueRecorded(): Promise<void> {
    const r = await stack.cli(auditor, ['sessions', 'export', '--since', '1h', '--format', 'jsonl']);
    expect(r.code, r.stderr).toBe(0);
    const results = r.stdout
      .split('\n')
      .filter(Boolean)
      .filter((line) => JSON.parse(line).record?.type === 'statement.result')
      .join('\n');
    expect(results).toContain('statement_id');
    expectNoClearValue(results);
  }
});
