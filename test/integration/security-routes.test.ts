/**
 * Routes around the gateway that issue 12 does not list, tried as an attacker would, each a regression
 * test through the real path (raw protocol client or psql → hoopctl connect → gateway → PostgreSQL).
 * docs/security.md lists every route and the test that shows it fails safely.
 *
 * The identity is an engineer who may read (and COPY into tables), whose writes need a reviewer and
 * who sees SSNs, card numbers and emails masked.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTrustingCa } from '../../src/shared/fetch-with-ca.js';
import { errorsOf, type RawMessage, RawPg, render, rowsText } from '../harness/raw-pg.js';
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
      - { name: sandbox-writes, allow: [write], relations: ["sandbox.*"] }
      - { name: changes-need-review, approve: [write], approvers: [db-reviewers], timeout: 3s }
      - { name: no-ddl, deny: [ddl, dcl, admin, procedural, copy-out] }
    masking:
      - { name: ssn-partial, columns: [public.customers.ssn], mask: partial }
      - { name: pan-partial, columns: [public.customers.card_pan], mask: partial }
      - { name: email-domain, columns: [public.customers.email], mask: email-domain }
  - name: auditors
    groups: [audit]
    audit: true
  - name: exporters
    groups: [audit]
    connections: [prod-db]
    rules:
      - { name: exports, allow: [read, transaction, session, copy-out] }
      - { name: exporter-changes-need-review, approve: [write], approvers: [db-reviewers], timeout: 3s }
`;

const errors = errorsOf;
const rows = rowsText;
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

  describe('catalog, masking and parser tricks (think like the attacker)', () => {
    const first = (messages: RawMessage[]) => errors(messages)[0];
    const noClearSsn = (messages: RawMessage[]) => {
      const everything = messages.map((m) => m.body.toString('utf8')).join('\n');
      for (const ssn of SSNS) expect(everything, `clear value ${ssn}`).not.toContain(ssn);
    };

    it('a masked column reached as a whole row (row_to_json, ::text, record output) never comes back in clear', async () => {
      const c = await open();
      for (const sql of [
        'select row_to_json(c) from customers c',
        'select c::text from customers c',
        'select c from customers c',
        'select (c).* from customers c',
        'select to_jsonb(c) ->> $$ssn$$ from customers c',
      ])
        noClearSsn(await c.exchange(query(sql)));
      c.close();
    });

    it('a masked column through aggregates, string functions and U& identifiers is masked or refused, never clear', async () => {
      const c = await open();
      for (const sql of [
        "select string_agg(ssn, ',') from customers",
        'select upper(ssn), ssn || $$$$ from customers',
        'select U&"\\0073sn" from customers',
        'select/**/"ssn"/**/from/**/public."customers"',
        'select array_agg(ssn) from customers',
      ])
        noClearSsn(await c.exchange(query(sql)));
      c.close();
    });

    it('names that differ only in case (a quoted alias, CTE or column next to an unquoted one) are not confused', async () => {
      // `|| ''` leaves the RowDescription without a table column: only the lineage can mask these.
      const c = await open();
      for (const sql of [
        `select "X" from (select 'a' || '' as x, ssn || '' as "X" from customers) s`,
        `with "A" as (select ssn || '' v from customers), a as (select 'z' || '' v) select * from "A"`,
        `select "C".x from (select ssn || '' x from customers) "C", (select 'a' || '' x) c`,
        `select "C".* from (select ssn || '' x from customers) "C", (select 'a' || '' x) c`,
      ]) {
        const out = await c.exchange(query(sql));
        expect(errors(out), sql).toEqual([]);
        expectMasked(out);
      }
      c.close();
    });

    it('an error that would echo a masked value (a failed cast) does not show it', async () => {
      const c = await open();
      const out = await c.exchange(query('select ssn::int from customers'));
      expect(first(out)?.C).toBeDefined();
      noClearSsn(out);
      c.close();
    });

    it('an error computed from a masked value cannot spell it out (a quote inside the value, numbers printed unquoted)', async () => {
      const c = await open();
      // The SSNs' digits as numbers: what get_byte, chr and make_date print unquoted.
      const numbers = SSNS.map((ssn) => String(Number(ssn.replaceAll('-', ''))));
      for (const sql of [
        `select ('"' || replace(ssn, '-', '.') || '"')::int from customers`,
        `select get_byte('\\x00'::bytea, 1000000000 + replace(ssn, '-', '')::int) from customers`,
        `select chr(2000000 + replace(ssn, '-', '')::int) from customers`,
        `select make_date(replace(ssn, '-', '')::int, 13, 1) from customers`,
        `select get_byte('\\x00'::bytea, ascii(substr(email, 1, 1)) * 65536) from customers`,
      ]) {
        const out = await c.exchange(query(sql));
        expect(first(out)?.M, sql).toMatch(
          /^hoop: message withheld because the statement reads masked columns \(SQLSTATE \w{5}, /,
        );
        noClearSsn(out);
        const everything = out.map((m) => m.body.toString('utf8')).join('\n');
        for (const n of numbers) expect(everything, `${sql}: ${n}`).not.toContain(n);
      }
      c.close();
    });

    it('a WITH HOLD cursor over masked columns, whose query runs again at COMMIT: the errors there are withheld too, and recorded withheld', async () => {
      const c = await open();
      const withheld = (out: RawMessage[], what: string) => {
        expect(first(out)?.C, what).toBe('22P02');
        expect(first(out)?.M, what).toMatch(
          /^hoop: message withheld because the statement reads masked columns/,
        );
        noClearSsn(out);
      };
      // PostgreSQL runs the cursor's query when the transaction commits: the error is the COMMIT's.
      await c.exchange(query('begin'));
      await c.exchange(query('declare h cursor with hold for select ssn::int from customers'));
      withheld(await c.exchange(query('commit')), 'COMMIT');
      await c.exchange(query('begin'));
      await c.exchange(query('declare h cursor with hold for select ssn::int from customers'));
      withheld(await c.exchange(query('end')), 'END');
      // The implicit transaction of a multi-statement Query commits at its end, after `select 1`.
      withheld(
        await c.exchange(
          query('declare h2 cursor with hold for select ssn::int from customers; select 1 as one'),
        ),
        'implicit commit',
      );
      // Extended protocol: the cursor declared through Parse/Bind/Execute, its query run at Sync.
      withheld(
        await c.exchange(
          cat(
            parse({ text: 'declare h3 cursor with hold for select ssn::int from customers' }),
            bind({}),
            execute({}),
            sync(),
          ),
        ),
        'Sync',
      );
      // Once the transaction is over, errors of statements that read no masked data are PostgreSQL's own.
      const plain = await c.exchange(query('select 1 / 0'));
      expect(first(plain)?.M).toBe('division by zero');
      await c.exchange(query('select 1')); // the last result record rides with this statement's commit
      c.close();
      // The audit log holds what the client was told.
      const data = join(stack.configFile, '..', 'hoop-data');
      const stored = readdirSync(data)
        .filter((f) => f.startsWith('hoop.db'))
        .map((f) => readFileSync(join(data, f)).toString('latin1'))
        .join('');
      for (const ssn of SSNS) expect(stored.includes(ssn), `clear ${ssn} in the audit store`).toBe(false);
    });

    it('a failed cast of a masked column in a predicate, ORDER BY or GROUP BY (not in the output) does not echo it', async () => {
      const c = await open();
      for (const sql of [
        'select id from customers where ssn::int > 0',
        'select id from customers order by ssn::int',
        'select count(*) from customers group by ssn::int',
        'select id from customers where ssn::date is not null',
        'select 1 from customers having max(ssn)::int > 0',
      ]) {
        const out = await c.exchange(query(sql));
        noClearSsn(out);
      }
      c.close();
    });

    it('masked values sent to a side channel the client can read back (NOTIFY payloads, custom settings) never arrive in clear', async () => {
      const c = await open();
      await c.exchange(query('listen leak'));
      for (const sql of [
        "select pg_notify('leak', ssn) from customers",
        "select set_config('hoop.leak', ssn, false) from customers",
        "select current_setting('hoop.leak', true)",
      ]) {
        const out = await c.exchange(query(sql));
        noClearSsn(out);
      }
      await c.exchange(query("select 'flush notifications'"));
      noClearSsn(c.messages);
      // An advisory lock's key is shown in pg_locks (to every session): the SSN's digits as a number.
      const digits = SSNS.map((ssn) => String(Number(ssn.replaceAll('-', ''))));
      for (const sql of [
        "select pg_advisory_lock(replace(ssn, '-', '')::bigint) from customers",
        "select pg_try_advisory_xact_lock(1, replace(ssn, '-', '')::int) from customers",
        "select pg_advisory_lock_shared(replace(ssn, '-', '')::bigint) from customers",
      ]) {
        const out = await c.exchange(query(sql));
        expect(first(out)?.C, sql).toBe('42501');
      }
      const locks = rows(
        await c.exchange(query("select classid, objid from pg_locks where locktype = 'advisory'")),
      );
      for (const n of digits) expect(locks, `lock key ${n}`).not.toMatch(new RegExp(`\\b${n}\\b`));
      await c.exchange(query('select pg_advisory_unlock_all()'));
      c.close();
    });

    it('DO blocks and procedures are refused (procedural), so RAISE cannot echo a value', async () => {
      const c = await open();
      const out = await c.exchange(
        query("do $$ begin raise exception '%', (select ssn from customers limit 1); end $$"),
      );
      expect(first(out)).toMatchObject({ C: '42501' });
      noClearSsn(out);
      expect(first(await c.exchange(query('call public.any_procedure()')))).toMatchObject({ C: '42501' });
      c.close();
    });

    it('rules and triggers that would smuggle writes into reads are DDL: refused', async () => {
      const c = await open();
      for (const sql of [
        'create rule r as on select to customers do instead select * from orders',
        'create temp table t (x int)',
        'create function pg_temp.lower(text) returns text language sql as $$select $1$$',
        'create trigger t before insert on orders for each row execute function pg_temp.f()',
        'create operator public.= (leftarg = text, rightarg = text, function = texteq)',
      ])
        expect(first(await c.exchange(query(sql)))).toMatchObject({ C: '42501' });
      c.close();
    });

    it('settings the parser depends on cannot change: SET client_encoding / standard_conforming_strings refused or the session ends', async () => {
      for (const sql of [
        "set client_encoding = 'SJIS'",
        "select set_config('client_encoding', 'SJIS', false)",
        'set standard_conforming_strings = off',
      ]) {
        const c = await open();
        const out = await c.exchange(query(sql));
        const e = first(out);
        expect(e, sql).toBeDefined();
        if (!c.closed) {
          // Refused and still UTF8: a query afterwards runs normally.
          expect(render(await c.exchange(query("select 'ok'")))).toContain('C SELECT 1');
          c.close();
        }
      }
    });

    it('startup with replication=database is refused; a client_encoding the parser cannot read never reaches the server', async () => {
      const login = (params: Record<string, string>) =>
        RawPg.connect({
          port: tunnel.port,
          user: 'hoop',
          database: 'prod-db',
          password: tunnel.password,
          params,
        });
      await expect(login({ replication: 'database' })).rejects.toThrow(/replication/);
      for (const params of [{ client_encoding: 'SJIS' }, { options: '-c client_encoding=SJIS' }]) {
        // Refused, or the session runs in UTF8: the parser and the server read the same bytes.
        const c = await login(params).catch(() => undefined);
        if (!c) continue;
        expect(rows(await c.exchange(query('show client_encoding')))).toContain('UTF8');
        c.close();
      }
    });

    it('a parse tree deep enough to exhaust a stack fails that statement only; the session carries on', async () => {
      const c = await open();
      const depth = 20_000;
      const out = await c.exchange(query(`select ${'('.repeat(depth)}1${')'.repeat(depth)}`));
      expect(first(out)?.C).toMatch(/^(54001|42601|54000)$/);
      expect(render(await c.exchange(query("select 'still here'")))).toContain('C SELECT 1');
      c.close();
    });

    it('invalid UTF-8 and a NUL inside the Query are refused, and nothing after the NUL runs', async () => {
      const c = await open();
      const bad = Buffer.concat([Buffer.from("select '"), Buffer.from([0xff, 0xfe]), Buffer.from("'")]);
      const invalid = Buffer.alloc(5 + bad.length + 1);
      invalid.write('Q', 0, 'latin1');
      invalid.writeInt32BE(4 + bad.length + 1, 1);
      bad.copy(invalid, 5);
      expect(first(await c.exchange(invalid))?.C).toBeDefined();
      const nul = Buffer.from('select 1\0; select ssn from customers\0', 'utf8');
      const withNul = Buffer.alloc(5 + nul.length);
      withNul.write('Q', 0, 'latin1');
      withNul.writeInt32BE(4 + nul.length, 1);
      nul.copy(withNul, 5);
      c.socket.write(withNul);
      await c.until(() => c.closed || c.messages.some((m) => m.type === 'Z'));
      noClearSsn(c.messages);
      c.close();
    });

    it('a cursor WITH HOLD keeps its masking across COMMIT', async () => {
      const c = await open();
      await c.exchange(
        query('begin; declare h cursor with hold for select ssn from customers order by id; commit'),
      );
      const out = await c.exchange(query('fetch all from h'));
      expectMasked(out);
      c.close();
    });

    it('writes dressed as reads (EXPLAIN ANALYZE, a SELECT before a DELETE, inside a block) wait for a reviewer and do not run', async () => {
      const count = async () => {
        const d = await direct();
        const n = rows(await d.exchange(query('select count(*) from orders')));
        d.close();
        return n;
      };
      const before = await count();
      const tries = [
        'explain analyze delete from orders',
        'select 1; delete from orders',
        'begin; delete from orders; commit',
      ];
      const outs = await Promise.all(
        tries.map(async (sql) => {
          const c = await open();
          const out = await c.exchange(query(sql), 1, 20_000);
          c.close();
          return out;
        }),
      );
      for (const [i, out] of outs.entries()) {
        // No reviewer answers: the approval times out and the statement fails, never runs.
        expect(errors(out).length, tries[i]).toBeGreaterThan(0);
        expect(
          out.some((m) => m.type === 'C' && m.body.toString().startsWith('DELETE')),
          tries[i],
        ).toBe(false);
      }
      expect(await count()).toBe(before);
    });

    // Issue 12, item 3: row-locking reads are writes (they hold row locks that block writers until the
    // transaction ends), so under a read-only policy they need what a write needs.
    it('SELECT … FOR UPDATE (a row-locking read) waits for a reviewer like a write', async () => {
      const c = await open();
      const out = await c.exchange(query('select * from orders for update'), 1, 20_000);
      c.close();
      expect(errors(out).length).toBeGreaterThan(0);
    });

    it('COPY (SELECT … FOR UPDATE) TO STDOUT locks rows as the SELECT does: a write, not a copy-out', async () => {
      const exporter = await stack.connect(await stack.login('aubrey@example.com'));
      const c = await RawPg.connect({
        port: exporter.port,
        user: 'hoop',
        database: 'prod-db',
        password: exporter.password,
      });
      // COPY out is allowed to this identity, writes wait for a reviewer.
      expect(errors(await c.exchange(query('copy (select id from orders where id = 1) to stdout')))).toEqual(
        [],
      );
      for (const sql of [
        'copy (select id from orders for update) to stdout',
        'copy (select id from orders for no key update skip locked) to stdout',
      ]) {
        const out = await c.exchange(query(sql), 1, 20_000);
        expect(
          render(out).some((line) => line.includes('waiting for approval')),
          sql,
        ).toBe(true);
        expect(
          out.some((m) => m.type === 'H'),
          sql,
        ).toBe(false);
      }
      c.close();
      exporter.stop();
    });

    it('a write a function makes outside the relations a rule allows (setval on another sequence) waits for a reviewer', async () => {
      const d = await direct();
      await d.exchange(
        query(
          'create schema if not exists sandbox; create table if not exists sandbox.t (id int); ' +
            'create sequence if not exists sandbox.t_seq; insert into sandbox.t values (1)',
        ),
      );
      const before = rows(
        await d.exchange(query("select last_value from pg_sequences where sequencename = 'orders_id_seq'")),
      );
      const c = await open();
      // Writes on sandbox.* are allowed: the sequence named as text is one of the statement's relations.
      const allowed = await c.exchange(query("select nextval('sandbox.t_seq') from sandbox.t"));
      expect(errors(allowed)).toEqual([]);
      // The statement reads only sandbox.t, but setval changes public.orders_id_seq: not a sandbox write.
      const reset = await c.exchange(
        query("select setval('public.orders_id_seq', 1) from sandbox.t"),
        1,
        20_000,
      );
      expect(render(reset).some((line) => line.includes('waiting for approval'))).toBe(true);
      expect(errors(reset).length).toBeGreaterThan(0); // not approved: it never ran
      // A sequence computed at run time names no relation: no relation-narrowed allow covers it.
      const computed = await c.exchange(
        query("select setval(('public.' || 'orders_id_seq')::regclass, 1) from sandbox.t"),
        1,
        20_000,
      );
      expect(render(computed).some((line) => line.includes('waiting for approval'))).toBe(true);
      c.close();
      const after = rows(
        await d.exchange(query("select last_value from pg_sequences where sequencename = 'orders_id_seq'")),
      );
      expect(after).toEqual(before);
      d.close();
    });

    it('an error of a write through an updatable view (its failing row is the base table row) is withheld', async () => {
      const d = await direct();
      await d.exchange(
        query(
          'create schema if not exists sandbox; create or replace view sandbox.customer_names as ' +
            'select id, name, country from public.customers',
        ),
      );
      d.close();
      const c = await open();
      // Allowed (sandbox-writes): the view shows no masked column, but the NOT NULL error's detail
      // would quote the whole row of public.customers, SSN and card number included.
      const out = await c.exchange(query('update sandbox.customer_names set name = null where id = 1'));
      c.close();
      expect(first(out)?.C).toBe('23502');
      expect(first(out)?.D).toBe('hoop: detail withheld because the statement reads masked columns');
      noClearSsn(out);
      expect(out.map((m) => m.body.toString('utf8')).join('\n')).not.toContain('4111111111111111');
    });

    it('an error of a deferred constraint, raised at COMMIT, Sync or SET CONSTRAINTS for an earlier write, is withheld', async () => {
      // A DBA's deferrable foreign key on the masked column: deleting a referenced customer fails only
      // when the transaction commits, and the detail quotes the key: "Key (ssn)=(...) is still referenced".
      const secret = '000-77-8888';
      const d = await direct();
      await d.exchange(
        query(
          'create schema if not exists sandbox; create or replace view sandbox.customer_names as ' +
            'select id, name, country from public.customers; ' +
            'alter table public.customers add constraint customers_ssn_key unique (ssn); ' +
            'create table public.badges (ssn text references public.customers (ssn) deferrable initially deferred); ' +
            `insert into public.customers (id, name, email, ssn, card_pan, country) values (99, 'Badge Holder', 'b@example.com', '${secret}', '4000000000000002', 'NL'); ` +
            `insert into public.badges values ('${secret}')`,
        ),
      );
      const c = await open();
      const withheld = (out: RawMessage[], what: string) => {
        expect(first(out)?.C, what).toBe('23503');
        expect(first(out)?.D, what).toBe('hoop: detail withheld because the statement reads masked columns');
        expect(out.map((m) => m.body.toString('utf8')).join('\n'), what).not.toContain(secret);
      };
      // Allowed (sandbox-writes), and the DELETE itself succeeds: the check waits for the commit.
      const remove = 'delete from sandbox.customer_names where id = 99';
      for (const end of ['commit', 'end', 'set constraints all immediate', 'prepare transaction $$t$$']) {
        await c.exchange(query('begin'));
        expect(errors(await c.exchange(query(remove))), end).toEqual([]);
        withheld(await c.exchange(query(end)), end);
        await c.exchange(query('rollback'));
      }
      // The implicit transaction of a multi-statement Query commits after its last statement.
      withheld(await c.exchange(query(`${remove}; select 1 as one`)), 'implicit commit');
      // Extended protocol: the implicit transaction commits at Sync.
      withheld(await c.exchange(cat(parse({ text: remove }), bind({}), execute({}), sync())), 'Sync');
      // Once the transaction is over, errors of statements that read no masked data are PostgreSQL's own.
      expect(first(await c.exchange(query('select 1 / 0')))?.M).toBe('division by zero');
      c.close();
      await d.exchange(
        query(
          'drop table public.badges; delete from public.customers where id = 99; ' +
            'alter table public.customers drop constraint customers_ssn_key',
        ),
      );
      d.close();
    });

    it("a trigger's NOTIFY of a changed row reaches a LISTENing identity with masking rules without its payload", async () => {
      const d = await direct();
      await d.exchange(
        query(
          'create or replace function public.customer_feed() returns trigger language plpgsql as ' +
            "$$ begin perform pg_notify('customer_changes', row_to_json(new)::text); return new; end $$; " +
            'drop trigger if exists customer_feed on public.customers; ' +
            'create trigger customer_feed after update on public.customers for each row execute function public.customer_feed()',
        ),
      );
      const c = await open();
      await c.exchange(query('listen customer_changes'));
      await d.exchange(query('update public.customers set country = country where id = 1'));
      const out = await c.exchange(query('select 1'));
      await d.exchange(query('drop trigger customer_feed on public.customers'));
      d.close();
      c.close();
      const notification = out.find((m) => m.type === 'A');
      expect(notification).toBeDefined();
      expect(notification!.body.toString('utf8')).toContain('customer_changes');
      expect(notification!.body.toString('utf8')).toContain('payload withheld');
      noClearSsn(out);
    });

    it('a flood of tiny messages (100,000 Flush in one write) is answered in order and the session goes on', async () => {
      const c = await open();
      const out = await c.exchange(
        cat(Buffer.concat(Array.from({ length: 100_000 }, () => flush())), sync()),
        1,
        60_000,
      );
      expect(render(out)).toEqual(['Z I']);
      expect(render(await c.exchange(query("select 'after the flood'")))).toContain('C SELECT 1');
      c.close();
    });

    it('guessed CancelRequests (random process ids and keys) cancel nothing', async () => {
      const c = await open();
      c.socket.write(query('select pg_sleep(1.5), 1 as done'));
      for (let i = 0; i < 30; i++) {
        const guess = Buffer.alloc(16);
        guess.writeInt32BE(16, 0);
        guess.writeInt32BE(80877102, 4);
        guess.writeInt32BE((Math.random() * 2 ** 31) | 0, 8);
        guess.writeInt32BE((Math.random() * 2 ** 31) | 0, 12);
        const s = netConnect({ host: '127.0.0.1', port: tunnel.port });
        s.on('error', () => {});
        s.end(guess);
      }
      await c.until(() => c.messages.some((m) => m.type === 'Z'), 20_000);
      expect(errors(c.messages)).toEqual([]);
      expect(render(c.messages)).toContain('C SELECT 1');
      c.close();
    });
  });

  it('a path with malformed percent-encoding is a 400 for the client (before any login), not a server error', async () => {
    const get = stack.certs ? fetchTrustingCa(stack.certs.caCert) : fetch;
    const api = await get(`${stack.gatewayUrl}/v1/approvals/%ZZ`);
    expect(api.status).toBe(400);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('bad_request');
    expect(stack.gatewayLog()).not.toMatch(/URIError/);
  });
});
