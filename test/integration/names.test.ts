/**
 * Issue 12, item 2 on the wire: names resolve the way the server resolves them. search_path is an
 * ordinary session setting the gateway follows (SET, SET LOCAL, RESET, set_config, rollbacks,
 * savepoints, startup options), so a rule about `secret.*` catches `customers` when the path makes it
 * `secret.customers`, and quoting keeps `"Secret"` apart from `secret`. Real PostgreSQL, IdP, gateway,
 * CLI and psql / node-postgres / postgres.js.
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psql } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

/** Alice (engineering) may read, except the `secret` schema (and `public.vault`, any case). */
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
INSERT INTO "Secret".customers VALUES (1, 'not secret');
CREATE TABLE public."Vault" (id int);
CREATE TABLE public.vault (id int);
`;

let stack: Stack;
let alice: string;
let tunnel: Tunnel;

const denied = (sql: string, env?: Record<string, string>) => {
  const r = psql(tunnel.url, ['-c', sql], { env });
  return r.status !== 0 ? r.stderr : undefined;
};

beforeAll(async () => {
  stack = await startStack({ policies: POLICIES });
  stack.pg.psql(SETUP_SQL, 'shop');
  alice = await stack.login('alice@example.com');
  tunnel = await stack.connect(alice);
}, 180_000);

afterAll(async () => {
  tunnel?.stop();
  await stack?.stop();
});

describe('search_path through the gateway', () => {
  it('SET search_path is an ordinary session statement; names then resolve through it', () => {
    for (let i = 0; i < 4; i++) {
      const t0 = Date.now();
      expect(denied('select count(*) from customers')).toBeUndefined();
      console.log('one psql', Date.now() - t0);
    }
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      expect(denied('select 1')).toBeUndefined();
      console.log('one psql select 1', Date.now() - t0);
    }
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      psql(stack.pg.url('shop'), ['-c', 'select 1']);
      console.log('direct psql select 1', Date.now() - t0);
    }
    // The same unqualified name, once the path puts `secret` first, is secret.customers.
    const r = psql(tunnel.url, [], {
      input: 'set search_path = secret, public;\nselect * from customers;\n',
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/denied by rule "no-secrets"/);
    expect(r.stderr).toMatch(/secret\.customers/);
  });
});
