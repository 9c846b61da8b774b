/**
 * An approval runs exactly what the reviewer saw: the statement text and what it was bound with —
 * values, their format codes and the Parse's parameter types. Found by trying it as an attacker: a
 * request filed with the text `\x25` (a LIKE pattern matching nothing) ran, once approved, with the
 * binary byte 0x25 (`%`, matching every row), because both were shown and compared as `\x25`.
 * Driven over the tunnel as `hoopctl exec` opens it (pg-protocol binds strings as text, Buffers as binary).
 */
import { readFileSync } from 'node:fs';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FrameReader } from '../../gateway/pgwire/frames.js';
import { fieldsOf } from '../harness/raw-pg.js';
import { type Stack, startStack } from '../harness/stack.js';

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write], approvers: [db-reviewers], timeout: 30m }
  - name: reviewers
    groups: [db-reviewers]
    connections: [prod-db]
    review: true
`;

interface Message {
  type: string;
  body: Buffer;
}

/** A protocol client over the gateway's tunnel, with the headers `hoopctl exec` sends. */
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
  /** Send bytes; wait until `readies` ReadyForQuery messages (one per Sync) have come; return them all. */
  const exchange = async (bytes: Buffer, readies = 1): Promise<Message[]> => {
    ws.send(bytes);
    const until = Date.now() + 20_000;
    while (seen.filter((m) => m.type === 'Z').length < readies) {
      if (Date.now() > until) throw new Error(`no ReadyForQuery; got ${seen.map((m) => m.type).join('')}`);
      await new Promise((r) => setTimeout(r, 30));
    }
    return seen.splice(0);
  };
  await exchange(serialize.startup({ user: 'hoop', database: 'prod-db' }));
  return { exchange, close: () => ws.close() };
}

const errors = (messages: Message[]) => messages.filter((m) => m.type === 'E').map((m) => fieldsOf(m.body));
const tags = (messages: Message[]) =>
  messages.filter((m) => m.type === 'C').map((m) => m.body.toString('utf8', 0, m.body.length - 1));

describe('an approval is bound to what it was filed with', () => {
  let stack: Stack;
  let aliceToken: string;
  let rita: string;
  const sql = "update public.customers set country = 'ZZ' where name like $1";
  // pg-protocol binds a string in text format and a Buffer in binary format.
  const statement = (types: number[], value: string | Buffer) =>
    Buffer.concat([
      serialize.parse({ text: sql, types }),
      serialize.bind({ values: [value] }),
      serialize.execute({}),
      serialize.sync(),
    ]);

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES });
    const alice = await stack.login('alice@example.com');
    rita = await stack.login('rita@example.com');
    aliceToken = (await stack.cli(alice, ['token'])).stdout.trim();
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('the text \\x25 approved is not the byte % (binary), nor the same bytes under another parameter type', async () => {
    const filer = await session(stack, aliceToken, { 'x-hoop-approval-wait': 'none' });
    const filed = await filer.exchange(statement([25], '\\x25'));
    filer.close();
    expect(errors(filed)[0]?.R).toBe('hoop_approval_pending');
    const id = /#(\d+)/.exec(errors(filed)[0]!.M!)![1]!;
    // The reviewer sees a text value; a binary one would read "(binary) \x25".
    const shown = JSON.parse((await stack.cli(rita, ['approvals', '--json'])).stdout) as {
      approvals: { id: string; params?: unknown[] }[];
    };
    expect(shown.approvals.find((a) => a.id === id)?.params).toEqual(['\\x25']);
    expect((await stack.cli(rita, ['approve', id])).code).toBe(0);

    for (const [types, value] of [
      [[25], Buffer.from([0x25])], // '%' in binary: every row
      [[1043], '\\x25'], // varchar instead of text
      [[], '\\x25'], // the server infers the type
    ] as const) {
      const swap = await session(stack, aliceToken, { 'x-hoop-approval': id });
      const out = await swap.exchange(statement([...types], value));
      swap.close();
      expect(errors(out)[0]?.R).toBe('hoop_approval_invalid');
      expect(errors(out)[0]?.M).toMatch(/different parameter values/);
      expect(tags(out)).toEqual([]);
    }
    expect(stack.pg.psql("select count(*) from public.customers where country = 'ZZ'", 'shop').trim()).toBe(
      '0',
    );

    // Exactly as filed, it runs once (and matches nothing).
    const exact = await session(stack, aliceToken, { 'x-hoop-approval': id });
    expect(tags(await exact.exchange(statement([25], '\\x25')))).toEqual(['UPDATE 0']);
    exact.close();
  });

  it('a portal bound twice in pipelined segments, the approved values first in a segment that fails: refused, not run with the other values', async () => {
    const filer = await session(stack, aliceToken, { 'x-hoop-approval-wait': 'none' });
    const filed = await filer.exchange(statement([25], 'nobody%'));
    filer.close();
    const id = /#(\d+)/.exec(errors(filed)[0]!.M!)![1]!;
    expect((await stack.cli(rita, ['approve', id])).code).toBe(0);

    // Segment 1 fails at the server (1/0) before its Bind of p with the approved value; segment 2
    // binds p with '%'. Judged while both are unanswered, p is one of two definitions of one text.
    const run = await session(stack, aliceToken, { 'x-hoop-approval': id });
    const out = await run.exchange(
      Buffer.concat([
        serialize.parse({ name: 's', text: sql, types: [25] }),
        serialize.parse({ name: 'z', text: 'select 1/0' }),
        serialize.bind({ statement: 'z' }),
        serialize.execute({}),
        serialize.bind({ portal: 'p', statement: 's', values: ['nobody%'] }),
        serialize.sync(),
        serialize.parse({ text: 'begin' }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.bind({ portal: 'p', statement: 's', values: ['%'] }),
        serialize.sync(),
        serialize.execute({ portal: 'p' }),
        serialize.sync(),
        serialize.parse({ text: 'commit' }),
        serialize.bind({}),
        serialize.execute({}),
        serialize.sync(),
      ]),
      4,
    );
    run.close();
    expect(errors(out).map((e) => e.R)).toEqual(['int4div', 'hoop_name_unknown']);
    expect(tags(out).filter((t) => t.startsWith('UPDATE'))).toEqual([]);
    expect(stack.pg.psql("select count(*) from public.customers where country = 'ZZ'", 'shop').trim()).toBe(
      '0',
    );
  });
});
