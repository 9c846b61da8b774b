import { beforeAll, describe, expect, it } from 'vitest';
import { createPolicyEngine } from '../../../gateway/policy/engine.js';
import { explain } from '../../../gateway/policy/explain.js';
import { classify } from '../../../gateway/sql/classify.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { parseConfig } from '../../../src/shared/config/load.js';
import type { Identity } from '../../../src/shared/identity.js';
import type { ClassifiedStatement } from '../../../src/shared/statement.js';

beforeAll(async () => {
  await loadSqlParser();
});

const CONFIG = `
listen: { insecure_loopback: true }
identity: { issuers: [{ issuer: https://idp.example.com, audience: gw }] }
connections:
  - { name: prod-db, host: db, database: shop, user: hoop, password_env: P, description: production }
  - { name: staging-db, host: db2, database: shop, user: hoop, password_env: P }
  - { name: other, host: db3, database: x, user: hoop, password_env: P }
policies:
  - name: engineers
    groups: [engineering]
    connections: ["*-db"]
    rules:
      - { name: no-secrets, deny: [read, write], relations: ["secrets.*"] }
      - { name: read-files, allow: [read], functions: [pg_read_file], allow_side_channels: [pg_read_file] }
      - { name: orders-only-write, allow: [write], relations: [public.orders] }
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], approvals_required: 2, timeout: 30m }
      - { name: no-admin, deny: [admin, dcl, copy-out, procedural] }
    masking:
      - { columns: [public.customers.ssn], mask: partial }
  - name: locked-down
    groups: [contractors]
    connections: [prod-db]
    rules:
      - { name: no-ddl, deny: [ddl] }
      - { name: locking-reads, deny: [read], flags: [locking] }
  - name: bob-extra
    subjects: [bob]
    connections: [prod-db]
    rules:
      - { name: bob-reads, allow: [read] }
  - name: break-glass
    groups: [engineering]
    connections: [prod-db]
    requestable: true
    rules:
      - { name: emergency-writes, allow: [write, ddl] }
  - name: reviewers
    groups: [db-reviewers]
    review: true
  - name: auditors
    subjects: [carol]
    audit: true
`;

const config = parseConfig(CONFIG, 'test.yaml');
const engine = createPolicyEngine(config);

const who = (subject: string, groups: string[] = []): Identity => ({
  issuer: 'https://idp.example.com',
  subject,
  groups,
  kind: 'human',
});
const alice = who('alice', ['engineering']);
const carl = who('carl', ['engineering', 'contractors']);

function one(sql: string): ClassifiedStatement {
  const c = classify(sql);
  if (!c.ok || c.statements.length !== 1) throw new Error(`expected one statement: ${sql}`);
  return c.statements[0]!;
}
const decide = (identity: Identity, sql: string, connection = 'prod-db', grants?: string[]) =>
  engine.decide(identity, connection, one(sql), { grants });

describe('decide', () => {
  it('first matching rule of a policy wins', () => {
    expect(decide(alice, 'select * from orders')).toMatchObject({
      action: 'allow',
      rule: 'reads',
      policy: 'engineers',
    });
    expect(decide(alice, 'select * from secrets.keys')).toMatchObject({ action: 'deny', rule: 'no-secrets' });
  });

  it('relations narrow: a deny rule matches when any relation matches', () => {
    expect(decide(alice, 'select * from orders join secrets.keys using (id)')).toMatchObject({
      rule: 'no-secrets',
    });
    expect(decide(alice, 'with s as (select * from secrets.k) select * from s')).toMatchObject({
      rule: 'no-secrets',
    });
  });

  it('relations narrow: an allow rule matches only when every relation matches', () => {
    expect(decide(alice, 'update orders set x = 1')).toMatchObject({
      action: 'allow',
      rule: 'orders-only-write',
    });
    expect(decide(alice, 'update orders set x = 1 from customers')).toMatchObject({
      action: 'approve',
      rule: 'changes-need-review',
    });
    expect(decide(alice, 'insert into orders select * from customers')).toMatchObject({ action: 'approve' });
  });

  it('a change a function makes: a sequence named as text is a relation; anything else no relation names', () => {
    // setval's sequence is one of the statement's relations: it is not a write "on public.orders" only.
    const named = "select setval('public.orders_id_seq', 1) from orders";
    expect(one(named).relations).toEqual(['public.orders', 'public.orders_id_seq']);
    expect(one(named).flags).not.toContain('function-write');
    expect(decide(alice, named)).toMatchObject({ action: 'approve', rule: 'changes-need-review' });
    expect(decide(alice, `select nextval('"Orders".seq')`)).toMatchObject({ action: 'approve' });
    expect(one(`select nextval('"Orders".seq')`).relations).toEqual(['"Orders".seq']);
    // A sequence computed at run time, a large object: a relation-narrowed allow does not cover them,
    // a relation-narrowed deny catches them (and says why).
    for (const sql of [
      'select setval(name::regclass, 1) from orders',
      'select setval(16384, 1) from orders',
      'select lo_unlink(42) from orders',
      "select pg_notify('c', 'x') from orders",
    ]) {
      expect(one(sql).flags, sql).toContain('function-write');
      const verdict = decide(alice, sql);
      expect(verdict, sql).toMatchObject({ action: 'deny', rule: 'no-secrets' });
      expect(verdict.reason).toMatch(/a function call changes something no relation of the statement names/);
    }
  });

  it('approve carries approvers, approvals required and timeout', () => {
    expect(decide(alice, 'delete from customers')).toEqual({
      action: 'approve',
      policy: 'engineers',
      rule: 'changes-need-review',
      reason: expect.any(String),
      approvers: ['db-reviewers'],
      approvalsRequired: 2,
      timeoutMs: 1_800_000,
    });
  });

  it('explicit deny rules and default deny', () => {
    expect(decide(alice, 'vacuum')).toMatchObject({ action: 'deny', rule: 'no-admin' });
    expect(decide(alice, 'copy t from stdin')).toMatchObject({
      action: 'deny',
      rule: 'default-deny',
      policy: null,
    });
    expect(decide(alice, 'copy t from stdin').reason).toMatch(/copy-in/);
    expect(decide(who('nobody'), 'select 1')).toMatchObject({ action: 'deny', rule: 'default-deny' });
    expect(decide(alice, 'select 1', 'other')).toMatchObject({ action: 'deny', rule: 'default-deny' });
  });

  it('connections are globs', () => {
    expect(decide(alice, 'select 1', 'staging-db')).toMatchObject({ action: 'allow' });
  });

  it('side channels are denied by the built-in deny-list unless the allow rule names them', () => {
    expect(decide(alice, "select pg_read_file('x')")).toMatchObject({ action: 'allow', rule: 'read-files' });
    expect(decide(alice, "select pg_catalog.pg_read_file('x')")).toMatchObject({ action: 'allow' });
    expect(decide(alice, "select pg_ls_dir('.')")).toMatchObject({
      action: 'deny',
      rule: 'builtin-deny-list',
      policy: null,
    });
    expect(decide(alice, "select pg_read_file('x'), pg_ls_dir('.')")).toMatchObject({
      rule: 'builtin-deny-list',
    });
    expect(decide(alice, 'set role admin')).toMatchObject({ action: 'deny', rule: 'builtin-deny-list' });
    expect(decide(alice, "select set_config('role', 'x', false)")).toMatchObject({
      rule: 'builtin-deny-list',
    });
    expect(decide(alice, 'set work_mem = 1')).toMatchObject({ action: 'allow', rule: 'reads' });
    // An approve rule cannot let a side channel through either.
    expect(decide(alice, "insert into t select pg_read_file('x')")).toMatchObject({
      rule: 'builtin-deny-list',
    });
  });

  it('flags narrow: all listed flags must be present', () => {
    expect(decide(carl, 'lock table t in access share mode')).toMatchObject({
      action: 'deny',
      rule: 'locking-reads',
    });
  });

  it('several policies: the strictest verdict wins (deny > approve > allow)', () => {
    // engineers allow reads, locked-down has no opinion on plain reads
    expect(decide(carl, 'select * from t')).toMatchObject({ action: 'allow', rule: 'reads' });
    // engineers approve ddl, locked-down denies it
    expect(decide(carl, 'create table x (a int)')).toMatchObject({
      action: 'deny',
      rule: 'no-ddl',
      policy: 'locked-down',
    });
  });

  it('policies apply by subject too', () => {
    expect(decide(who('bob'), 'select 1')).toMatchObject({
      action: 'allow',
      rule: 'bob-reads',
      policy: 'bob-extra',
    });
    expect(decide(who('bob'), 'delete from t')).toMatchObject({ action: 'deny', rule: 'default-deny' });
  });

  it('requestable policies apply only while granted, and a grant decides first', () => {
    expect(decide(alice, 'delete from t')).toMatchObject({ action: 'approve' });
    expect(decide(alice, 'delete from t', 'prod-db', ['break-glass'])).toMatchObject({
      action: 'allow',
      rule: 'emergency-writes',
      policy: 'break-glass',
    });
    // A grant does not lift the side-channel deny-list.
    expect(
      decide(alice, "delete from t where x = pg_read_file('f')", 'prod-db', ['break-glass']),
    ).toMatchObject({
      rule: 'builtin-deny-list',
    });
    expect(engine.policiesFor(alice, 'prod-db').map((p) => p.name)).toEqual(['engineers']);
    expect(engine.policiesFor(alice, 'prod-db', ['break-glass']).map((p) => p.name)).toEqual([
      'engineers',
      'break-glass',
    ]);
  });

  it('unplaceable statements are denied', () => {
    expect(decide(alice, 'execute p')).toMatchObject({ action: 'deny', rule: 'unplaceable' });
  });
});

describe('decideAll', () => {
  const all = (sql: string, identity = alice) => engine.decideAll(identity, 'prod-db', classify(sql));

  it('unparseable text is denied', () => {
    expect(all('selec 1').decision).toMatchObject({ action: 'deny', rule: 'unparseable', policy: null });
  });
  it('an empty query is allowed', () => {
    expect(all('').decision).toMatchObject({ action: 'allow', rule: 'empty-query' });
  });
  it('any denied statement denies the message and names it', () => {
    const result = all('select 1; vacuum; delete from t');
    expect(result.decision).toMatchObject({ action: 'deny', rule: 'no-admin' });
    expect(result.decision.reason).toMatch(/^statement 2 of 3/);
    expect(result.statement?.text).toBe('vacuum');
    expect(result.statements.map((d) => d.action)).toEqual(['allow', 'deny', 'approve']);
  });
  it('else any approval asks for approval', () => {
    expect(all('select 1; delete from t').decision).toMatchObject({
      action: 'approve',
      rule: 'changes-need-review',
    });
  });
  it('else all allowed', () => {
    const result = all('begin; select 1; commit');
    expect(result.decision).toMatchObject({ action: 'allow', rule: 'reads' });
  });
  it('a comment-only query is allowed (nothing runs)', () => {
    expect(all('-- hi').decision.action).toBe('allow');
  });
});

describe('roles and connectionsView', () => {
  it('roles come from review/audit/admin policies the identity is in', () => {
    expect(engine.roles(who('r', ['db-reviewers']))).toEqual({ review: true, audit: false, admin: false });
    expect(engine.roles(who('carol'))).toEqual({ review: false, audit: true, admin: false });
    expect(engine.roles(alice)).toEqual({ review: false, audit: false, admin: false });
  });

  it('lists each reachable connection with its effective rules', () => {
    const view = engine.connectionsView(alice);
    expect(view.map((v) => v.name)).toEqual(['prod-db', 'staging-db']);
    expect(view[0]).toMatchObject({ name: 'prod-db', description: 'production', database: 'shop' });
    expect(view[0]!.policies.map((p) => p.name)).toEqual(['engineers']);
    const rules = view[0]!.policies[0]!.rules;
    expect(rules.find((r) => r.name === 'changes-need-review')).toEqual({
      name: 'changes-need-review',
      action: 'approve',
      classes: ['write', 'ddl'],
      approvers: ['db-reviewers'],
      timeout: '30m',
    });
    expect(view[0]!.policies[0]!.masking).toEqual([{ columns: ['public.customers.ssn'], mask: 'partial' }]);
    const granted = engine.connectionsView(alice, { grants: ['break-glass'] })[0]!;
    expect(granted.policies.map((p) => p.name)).toEqual(['engineers', 'break-glass']);
    expect(engine.connectionsView(who('nobody'))).toEqual([]);
  });

  it('lists the requestable policies one may ask for, until they are granted', () => {
    const [prod] = engine.connectionsView(alice);
    expect(prod!.requestable.map((p) => p.name)).toEqual(['break-glass']);
    expect(prod!.requestable[0]!.max_duration).toMatch(/^\d+[smhd]/);
    expect(engine.connectionsView(alice, { grants: ['break-glass'] })[0]!.requestable).toEqual([]);
  });
});

describe('explain', () => {
  it('gives the decision and each statement’s classification', () => {
    const e = explain(engine, alice, 'prod-db', "select * from orders; select pg_ls_dir('.')");
    expect(e).toMatchObject({
      decision: 'deny',
      rule: 'builtin-deny-list',
      policies: ['engineers'],
      identity: { subject: 'alice', groups: ['engineering'] },
    });
    expect(e.statements).toHaveLength(2);
    expect(e.statements[0]).toMatchObject({ class: 'read', relations: ['public.orders'], decision: 'allow' });
    expect(e.statements[1]).toMatchObject({ sideChannels: ['pg_ls_dir'], decision: 'deny' });
  });
  it('reports a parse error', () => {
    const e = explain(engine, alice, 'prod-db', 'selec');
    expect(e).toMatchObject({ decision: 'deny', rule: 'unparseable', statements: [] });
    expect(e.parseError).toBeTruthy();
  });
});
