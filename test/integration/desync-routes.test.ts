/**
 * Routes that would put the gateway's session model out of step with the server's by mixing SQL-level
 * and protocol-level prepared statements and portals (2026-12-02, fourth round), through the real
 * gateway (raw protocol client → hoopctl connect → gateway → PostgreSQL 15). Each is the project's
 * founding bug class: a write run without approval, or masked values back in clear, because the
 * gateway judged one definition while the server ran another.
 */
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorsOf, RawPg, rowsText } from '../harness/raw-pg.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const { parse, bind, execute, sync, query } = serialize;
const cat = (...parts: Buffer[]) => Buffer.concat(parts);

const SSNS = ['000-12-3456', '000-98-7654', '000-45-6789', '000-11-2222', '000-33-4444'];

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: archive-writes, allow: [write], relations: ["archive.*"] }
      - { name: changes-need-review, approve: [write], approvers: [db-reviewers], timeout: 2s }
      - { name: no-ddl, deny: [ddl, dcl, admin] }
    masking:
      - { name: ssn-partial, columns: [public.customers.ssn], mask: partial }
  - name: auditors
    groups: [audit]
    audit: true
`;

function expectNoClearValue(text: string): void {
  for (const v of SSNS) expect(text, `clear value ${v}`).not.toContain(v);
}

describe('desynchronising the session model through names the server holds and the model does not', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  const open = () =>
    RawPg.connect({ port: tunnel.port, user: 'hoop', database: 'prod-db', password: tunnel.password });
  const orders = () => Number(stack.pg.psql('select count(*) from public.orders', 'shop').trim());

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES });
    // A DBA's archive schema whose tables this identity may change without review.
    stack.pg.psql(
      `set role hoop_gateway;
       create schema archive;
       create table archive.notes (id int); insert into archive.notes values (1), (2), (3);
       create table public.notes (id int); insert into public.notes values (1), (2), (3);
       create function public.open_cust() returns refcursor language plpgsql as $$
         declare c refcursor := 'fc'; begin open c for select id, ssn || '' as s from customers; return c; end $$;`,
      'shop',
    );
    tunnel = await stack.connect(await stack.login('alice@example.com'));
  }, 120_000);
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('a protocol portal running SQL EXECUTE of a protocol-parsed PREPARE: the statement it makes is known, and a Bind of it into the unnamed portal is judged as what it holds', async () => {
    const c = await open();
    await c.exchange(
      cat(
        parse({ name: 'inr', text: "prepare x as select ssn || '' as s from customers" }),
        parse({ name: 'outer', text: 'execute inr' }),
        bind({ portal: 'o', statement: 'outer' }),
        execute({ portal: 'o' }),
        sync(),
      ),
    );
    // The unnamed portal is bound to a harmless statement, then (same segment) to x.
    const out = await c.exchange(
      cat(
        parse({ name: 'h', text: "select 'harmless' as s" }),
        bind({ statement: 'h' }),
        bind({ statement: 'x' }),
        execute({}),
        sync(),
      ),
    );
    expect(errorsOf(out)).toEqual([]);
    expect(out.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(out));
    c.close();
  });

  it('a protocol portal running SQL EXECUTE of a protocol-parsed DECLARE: the cursor it opens is known, and an Execute of it is masked', async () => {
    const c = await open();
    await c.exchange(query('begin'));
    const made = await c.exchange(
      cat(
        parse({ name: 'ind', text: "declare c3 cursor for select ssn || '' as s from customers" }),
        parse({ name: 'outd', text: 'execute ind' }),
        bind({ portal: 'od', statement: 'outd' }),
        execute({ portal: 'od' }),
        sync(),
      ),
    );
    expect(errorsOf(made)).toEqual([]);
    const out = await c.exchange(cat(execute({ portal: 'c3' }), sync()));
    expect(errorsOf(out)).toEqual([]);
    expect(out.filter((m) => m.type === 'D')).toHaveLength(5);
    expectNoClearValue(rowsText(out));
    await c.exchange(query('rollback'));
    c.close();
  });

  it('the same with a DELETE: it never runs without a reviewer', async () => {
    const before = orders();
    const c = await open();
    const made = await c.exchange(
      cat(
        parse({ name: 'inw', text: 'prepare w as delete from orders where id > 45' }),
        parse({ name: 'outw', text: 'execute inw' }),
        bind({ portal: 'ow', statement: 'outw' }),
        execute({ portal: 'ow' }),
        sync(),
      ),
      1,
      30_000,
    );
    const out = await c.exchange(
      cat(
        parse({ name: 'hw', text: 'select 1' }),
        bind({ statement: 'hw' }),
        bind({ statement: 'w' }),
        execute({}),
        sync(),
      ),
      1,
      30_000,
    );
    c.close();
    expect(orders(), JSON.stringify([errorsOf(made), errorsOf(out)])).toBe(before);
  });

  it('SQL EXECUTE of a protocol-parsed SET search_path changes the path the gateway resolves names with', async () => {
    const count = (t: string) => Number(stack.pg.psql(`select count(*) from ${t}`, 'shop').trim());
    const c = await open();
    await c.exchange(query('set search_path to archive, public'));
    await c.exchange(cat(parse({ name: 'sp', text: 'set search_path to public' }), sync()));
    expect(errorsOf(await c.exchange(query('execute sp')))).toEqual([]);
    // Through a protocol portal too.
    await c.exchange(query('set search_path to archive, public'));
    const viaPortal = await c.exchange(
      cat(parse({ name: 'osp', text: 'execute sp' }), bind({ statement: 'osp' }), execute({}), sync()),
    );
    expect(errorsOf(viaPortal)).toEqual([]);
    // The server now resolves notes to public.notes: a write the policy allows only in archive.
    const out = await c.exchange(query('delete from notes where id = 3'), 1, 30_000);
    c.close();
    expect(count('public.notes'), JSON.stringify(errorsOf(out))).toBe(3);
    expect(errorsOf(out)[0]).toMatchObject({ R: 'hoop_approval_expired' });
    expect(count('archive.notes')).toBe(3);
  });

  it('a portal bound under one search_path and executed under another: refused, the write does not run', async () => {
    const count = (t: string) => Number(stack.pg.psql(`select count(*) from ${t}`, 'shop').trim());
    const c = await open();
    await c.exchange(query('set search_path to public'));
    // In a block: Bind (planned against public.notes), SET, then Execute.
    await c.exchange(query('begin'));
    await c.exchange(
      cat(
        parse({ name: 'd2', text: 'delete from notes where id = 2' }),
        bind({ portal: 'q1', statement: 'd2' }),
        sync(),
      ),
    );
    await c.exchange(query('set search_path to archive, public'));
    const out = await c.exchange(cat(execute({ portal: 'q1' }), sync()), 1, 30_000);
    expect(errorsOf(out)[0]).toMatchObject({ C: '42501', R: 'hoop_policy_denied' });
    await c.exchange(query('rollback'));
    // In one segment: Bind under public, a protocol SET, then Execute.
    await c.exchange(query('set search_path to public'));
    const piped = await c.exchange(
      cat(
        parse({ name: 'd1', text: 'delete from notes where id = 1' }),
        bind({ portal: 'p1', statement: 'd1' }),
        parse({ name: 'sp1', text: 'set search_path to archive, public' }),
        bind({ portal: 'p2', statement: 'sp1' }),
        execute({ portal: 'p2' }),
        execute({ portal: 'p1' }),
        sync(),
      ),
      1,
      30_000,
    );
    // The SET is still in flight when the Execute is judged: it is resolved under both paths, and the
    // delete of public.notes waits for a reviewer.
    expect(errorsOf(piped)[0]).toMatchObject({ R: 'hoop_approval_expired' });
    c.close();
    expect(count('public.notes')).toBe(3);
  });

  it('a SET search_path in a block, then a pipeline of Bind/Execute: runs (the paths the Bind may have had are covered)', async () => {
    const c = await open();
    await c.exchange(query('begin; set search_path to archive, public'));
    const out = await c.exchange(
      cat(
        parse({ name: 'rd', text: 'select count(*) from notes' }),
        bind({ portal: 'r1', statement: 'rd' }),
        execute({ portal: 'r1' }),
        bind({ portal: 'r2', statement: 'rd' }),
        execute({ portal: 'r2' }),
        sync(),
      ),
    );
    await c.exchange(query('rollback'));
    c.close();
    expect(errorsOf(out)).toEqual([]);
    expect(out.filter((m) => m.type === 'D')).toHaveLength(2);
  });

  it('SQL FETCH of a portal bound under one search_path, after the path changed: refused, the write does not run', async () => {
    const count = () => Number(stack.pg.psql('select count(*) from public.notes', 'shop').trim());
    const c = await open();
    await c.exchange(query('set search_path to public; begin'));
    await c.exchange(
      cat(
        parse({ name: 'dr', text: 'delete from notes where id = 3 returning id' }),
        bind({ portal: 'pr', statement: 'dr' }),
        sync(),
      ),
    );
    const out = await c.exchange(query('set search_path to archive, public; fetch all from pr'), 1, 30_000);
    await c.exchange(query('commit'));
    c.close();
    expect(count(), JSON.stringify(errorsOf(out))).toBe(3);
    expect(errorsOf(out)[0]).toMatchObject({ C: '42501' });
  });

  describe('routes that held (fourth round), kept as regressions', () => {
    it('a PREPARE undone by ROLLBACK TO SAVEPOINT stays prepared (PREPARE is not transactional): masked as its text', async () => {
      const c = await open();
      const out = await c.exchange(
        query(
          "begin; savepoint a; prepare y as select ssn || '' as s from customers; rollback to a; commit; execute y",
        ),
      );
      expect(errorsOf(out)).toEqual([]);
      expect(out.filter((m) => m.type === 'D')).toHaveLength(5);
      expectNoClearValue(rowsText(out));
      c.close();
    });

    it('a cursor a DBA function opened, FETCHed by a name the model never saw: masked', async () => {
      const c = await open();
      const out = await c.exchange(query('begin; select open_cust(); fetch all from fc; rollback'));
      expect(errorsOf(out)).toEqual([]);
      expect(out.filter((m) => m.type === 'D')).toHaveLength(6);
      expectNoClearValue(rowsText(out));
      c.close();
    });

    it('RESET ALL by SQL EXECUTE of a protocol Parse, and DISCARD ALL: the path goes back, writes are judged under it', async () => {
      const count = () => Number(stack.pg.psql('select count(*) from public.notes', 'shop').trim());
      const c = await open();
      for (const reset of [
        () => c.exchange(cat(parse({ name: 'ra', text: 'reset all' }), sync(), query('execute ra')), 2),
        () => c.exchange(query('discard all')),
      ]) {
        await c.exchange(query('set search_path to archive, public'));
        expect(errorsOf(await reset())).toEqual([]);
        const out = await c.exchange(query('delete from notes where id = 3'), 1, 30_000);
        expect(errorsOf(out)[0]).toMatchObject({ R: 'hoop_approval_expired' });
      }
      c.close();
      expect(count()).toBe(3);
    });

    it('a protocol Parse and a SQL PREPARE of one name, pipelined: every use refused', async () => {
      const c = await open();
      c.socket.write(
        cat(
          parse({ name: 'cx', text: "select 'x' as s" }),
          sync(),
          query("deallocate cx; prepare cx as select ssn || '' as s from customers"),
          bind({ statement: 'cx' }),
          execute({}),
          sync(),
        ),
      );
      await c.until(() => c.messages.filter((m) => m.type === 'Z').length >= 3);
      const out = c.messages.splice(0);
      expect(errorsOf(out).some((e) => e.R === 'hoop_name_unknown')).toBe(true);
      expectNoClearValue(rowsText(out));
      c.close();
    });
  });
});
