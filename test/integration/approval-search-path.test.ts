/**
 * A deferred approval runs under the search_path it was filed with. Found by trying it as an attacker:
 * `delete from t` filed under search_path `b` (the reviewer reads it as the requester's session saw it)
 * ran later, after approval, in a session under another path — reaching another schema's `t`. Two
 * schemas with the same table, the real gateway and PostgreSQL, the CLI for the reviewer and the run.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FrameReader } from '../../gateway/pgwire/frames.js';
import { fieldsOf } from '../harness/raw-pg.js';
import { type Stack, startStack } from '../harness/stack.js';

interface Message {
  type: string;
  body: Buffer;
}

/** A protocol client over the tunnel with the headers `hoopctl exec` sends; one Query at a time. */
async function session(stack: Stack, token: string, headers: Record<string, string>) {
  const ws = new WebSocket(`${stack.gatewayUrl.replace(/^http/, 'ws')}/v1/tunnel/prod-db`, {
    headers: { authorization: `Bearer ${token}`, 'x-hoop-client': 'exec', ...headers },
    ca: stack.certs ? readFileSync(stack.certs.caCert) : undefined,
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const reader = new FrameReader(1 << 20);
  const seen: Message[] = [];
  ws.on('message', (data: Buffer) => {
    for (const f of reader.push(data)) seen.push({ type: f.type, body: Buffer.from(f.body) });
  });
  const exchange = async (bytes: Buffer): Promise<Message[]> => {
    ws.send(bytes);
    const until = Date.now() + 20_000;
    while (!seen.some((m) => m.type === 'Z')) {
      if (Date.now() > until) throw new Error(`no ReadyForQuery; got ${seen.map((m) => m.type).join('')}`);
      await new Promise((r) => setTimeout(r, 30));
    }
    return seen.splice(0);
  };
  await exchange(serialize.startup({ user: 'hoop', database: 'prod-db' }));
  return { query: (sql: string) => exchange(serialize.query(sql)), close: () => ws.close() };
}

const errors = (messages: Message[]) => messages.filter((m) => m.type === 'E').map((m) => fieldsOf(m.body));

describe('a deferred approval carries the search_path it was filed under', () => {
  let stack: Stack;
  let alice: string;
  let aliceToken: string;
  let rita: string;
  const count = (schema: string) =>
    stack.pg.psql(`select count(*) from ${schema}.t where id = 1`, 'shop').trim();

  beforeAll(async () => {
    stack = await startStack();
    stack.pg.psql(
      `set role hoop_gateway;
       create schema a; create schema b;
       create table a.t (id int, v text); create table b.t (id int, v text);
       insert into a.t values (1, 'scratch'), (2, 'scratch'); insert into b.t values (1, 'real'), (2, 'real');`,
      'shop',
    );
    alice = await stack.login('alice@example.com');
    rita = await stack.login('rita@example.com');
    aliceToken = (await stack.cli(alice, ['token'])).stdout.trim();
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('the reviewer sees the path, the hash covers it, another path is refused, the run uses it', async () => {
    // Filed with --no-wait in a session whose search_path is b.
    const filer = await session(stack, aliceToken, { 'x-hoop-approval-wait': 'none' });
    expect(errors(await filer.query('set search_path to b'))).toEqual([]);
    const text = 'delete from t where id = 1';
    const filed = errors(await filer.query(text));
    filer.close();
    expect(filed[0]?.R).toBe('hoop_approval_pending');
    const id = /#(\d+)/.exec(filed[0]!.M!)![1]!;

    const listed = JSON.parse((await stack.cli(rita, ['approvals', '--json'])).stdout) as {
      approvals: { id: string; search_path?: string; statement_hash: string }[];
    };
    const view = listed.approvals.find((a) => a.id === id)!;
    expect(view.search_path).toBe('b');
    expect(view.statement_hash).not.toBe(createHash('sha256').update(text).digest('hex'));
    expect((await stack.cli(rita, ['approvals'])).stdout).toContain('search_path: b');
    expect((await stack.cli(rita, ['approve', id])).code).toBe(0);

    // The same text in a session under another path reaches a.t: refused, nothing deleted, not used.
    const other = await session(stack, aliceToken, { 'x-hoop-approval': id });
    expect(errors(await other.query('set search_path to a'))).toEqual([]);
    const refused = errors(await other.query(text));
    other.close();
    expect(refused[0]?.R).toBe('hoop_approval_invalid');
    expect(refused[0]?.M).toContain('filed under search_path b, not');
    expect(count('a')).toBe('1');
    expect(count('b')).toBe('1');

    // `hoopctl exec --approval` in a fresh session (default path "$user", public) runs it under b.
    const run = await stack.cli(alice, ['exec', 'prod-db', '--approval', id], { input: '' });
    expect(run.stderr).not.toContain('ERROR');
    expect(run.code).toBe(0);
    expect(count('b')).toBe('0');
    expect(count('a')).toBe('1');
  }, 60_000);

  it('a path the gateway cannot pin down (a set_config of a computed value) cannot be deferred', async () => {
    const filer = await session(stack, aliceToken, { 'x-hoop-approval-wait': 'none' });
    const set = errors(
      await filer.query("select set_config('search_path', v, false) from (values ('a')) s(v)"),
    );
    expect(set).toEqual([]);
    const refused = errors(await filer.query('delete from t where id = 2'));
    filer.close();
    expect(refused[0]?.R).toBe('hoop_approval_invalid');
    expect(refused[0]?.M).toContain('search_path is not known exactly');
    expect(stack.pg.psql('select count(*) from a.t where id = 2', 'shop').trim()).toBe('1');
  }, 60_000);
});
