/**
 * The wire protocol through the whole path (raw client → hoopctl connect → WebSocket/TLS → gateway →
 * PostgreSQL), compared message by message with the same bytes sent to PostgreSQL directly:
 * extended-protocol state, pipelining, Flush, skip-to-Sync, COPY, LISTEN/NOTIFY, notices,
 * ParameterStatus; and what the gateway itself must answer: malformed and oversized messages,
 * FunctionCall, protocol 3.2, SSL and GSS requests.
 */
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL_POLICIES, psql } from '../harness/clients.js';
import { fieldsOf, RawPg, render } from '../harness/raw-pg.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';
import { bytes } from '../unit/pgwire/bytes.js';

const cat = (...parts: Buffer[]) => Buffer.concat(parts);
const { parse, bind, execute, describe: describeMsg, close, sync, flush, query } = serialize;

describe('the wire protocol, gateway vs PostgreSQL directly', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  let alice: string;
  let aubrey: string;

  const viaGateway = () =>
    RawPg.connect({ port: tunnel.port, user: 'hoop', database: 'prod-db', password: tunnel.password });
  const direct = () =>
    RawPg.connect({
      port: stack.pg.port,
      user: 'hoop_gateway',
      database: 'shop',
      password: stack.dbPassword,
    });

  /** Run the same exchanges on both; the rendered answers must be identical. */
  async function same(steps: { send: Buffer; readies?: number }[]): Promise<string[]> {
    const results: string[][] = [];
    for (const open of [direct, viaGateway]) {
      const c = await open();
      const out: string[] = [];
      try {
        for (const step of steps) out.push(...render(await c.exchange(step.send, step.readies ?? 1)));
      } finally {
        c.close();
      }
      results.push(out);
    }
    expect(results[1]).toEqual(results[0]);
    return results[0]!;
  }

  beforeAll(async () => {
    stack = await startStack({ policies: ALLOW_ALL_POLICIES });
    alice = await stack.login('alice@example.com');
    aubrey = await stack.login('aubrey@example.com');
    tunnel = await stack.connect(alice);
    stack.pg.psql('create table if not exists public.proto (id int primary key, v text)', 'shop');
    stack.pg.psql('alter table public.proto owner to hoop_gateway', 'shop');
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('simple queries: several statements, an error in the middle, an empty query', async () => {
    const out = await same([
      { send: query("select 1 as a, 'x' as b; select generate_series(1,3)") },
      { send: query('select 1; select 1/0; select 2') },
      { send: query('') },
      { send: query('begin; select 1/0; select 1') },
      { send: query('rollback') },
    ]);
    expect(out).toContain('E ERROR 22012 division by zero');
    expect(out).toContain('I');
  });

  it('pipelines Parse/Bind/Describe/Execute with named and unnamed statements, binary results', async () => {
    const out = await same([
      {
        send: cat(
          parse({ name: 's1', text: 'select $1::int + 1 as n, $2::text as t', types: [23, 25] }),
          describeMsg({ type: 'S', name: 's1' }),
          bind({ portal: '', statement: 's1', values: ['41', 'hello'] }),
          describeMsg({ type: 'P', name: '' }),
          execute({ portal: '' }),
          bind({ portal: 'p2', statement: 's1', values: ['1', null], binary: true }),
          execute({ portal: 'p2' }),
          sync(),
          parse({ name: '', text: 'select x from generate_series(1,5) x' }),
          bind({}),
          execute({ portal: '', rows: 2 }),
          execute({ portal: '', rows: 2 }),
          execute({ portal: '', rows: 0 }),
          sync(),
        ),
        readies: 2,
      },
    ]);
    expect(out.filter((l) => l === 's')).toHaveLength(2); // PortalSuspended
  });

  it('after an error, skips to Sync exactly as PostgreSQL does, then carries on', async () => {
    await same([
      {
        send: cat(
          parse({ text: 'select 1/0' }),
          bind({}),
          execute({}),
          parse({ name: 'never', text: 'select 2' }),
          bind({ statement: 'never' }),
          execute({}),
          sync(),
          bind({ statement: 'never' }), // "never" was skipped, so it does not exist
          execute({}),
          sync(),
          parse({ text: 'select 3' }),
          bind({}),
          execute({}),
          sync(),
        ),
        readies: 3,
      },
    ]);
  });

  it('answers Flush without Sync', async () => {
    for (const open of [direct, viaGateway]) {
      const c = await open();
      c.socket.write(
        cat(parse({ name: 'f', text: 'select 42' }), describeMsg({ type: 'S', name: 'f' }), flush()),
      );
      await c.until(() => c.messages.some((m) => m.type === 'T'));
      expect(c.messages.map((m) => m.type).join('')).toBe('1tT');
      c.messages.splice(0);
      const rest = await c.exchange(cat(bind({ statement: 'f' }), execute({}), sync()));
      expect(rest.map((m) => m.type).join('')).toBe('2DCZ');
      c.close();
    }
  });

  it('keeps a named statement usable long after its Parse, and portals across Syncs in a transaction', async () => {
    const filler = Array.from({ length: 60 }, (_, i) => query(`select ${i}`));
    await same([
      { send: cat(parse({ name: 'late', text: 'select count(*) from customers where id > $1' }), sync()) },
      { send: cat(...filler), readies: 60 },
      { send: cat(bind({ statement: 'late', values: ['2'] }), execute({}), sync()) },
      {
        send: cat(
          query('begin'),
          parse({ text: 'select x from generate_series(1,6) x' }),
          bind({ portal: 'cur' }),
          execute({ portal: 'cur', rows: 4 }),
          sync(),
        ),
        readies: 2,
      },
      { send: cat(execute({ portal: 'cur', rows: 4 }), sync()) },
      {
        send: cat(
          close({ type: 'P', name: 'cur' }),
          close({ type: 'S', name: 'late' }),
          sync(),
          query('commit'),
        ),
        readies: 2,
      },
      { send: cat(bind({ statement: 'late', values: ['1'] }), execute({}), sync()) },
    ]);
  });

  it('records every pipelined Execute, even when its Bind is read before the previous ReadyForQuery', async () => {
    const before = await sessionIds();
    const c = await viaGateway();
    const rounds = 40;
    const pipeline: Buffer[] = [];
    for (let i = 0; i < rounds; i++)
      pipeline.push(parse({ text: `select ${i}` }), bind({}), execute({}), sync());
    const out = await c.exchange(cat(...pipeline), rounds);
    expect(out.filter((m) => m.type === 'C')).toHaveLength(rounds);
    c.close();
    let mine: { statements: number } | undefined;
    for (let i = 0; i < 50 && !mine?.statements; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const after = await sessions();
      mine = after.find((s) => !before.has(s.id) && s.statements > 0);
    }
    expect(mine?.statements).toBe(rounds);
  });

  it('COPY FROM STDIN and TO STDOUT in text, csv and binary, simple and extended', async () => {
    const setup = query('create temp table c (a int, b text, c bytea)');
    const copyIn = (format: string, data: Buffer) =>
      cat(query(`copy c from stdin (format ${format})`), serialize.copyData(data), serialize.copyDone());
    const binary = Buffer.from(
      '5047434f50590aff0d0a00' +
        '00000000' +
        '00000000' +
        '0003' +
        '00000004' +
        '00000007' +
        '00000002' +
        '6869' +
        '00000001' +
        'ff' +
        'ffff',
      'hex',
    );
    const out = await same([
      { send: setup },
      { send: copyIn('text', Buffer.from('1\tone\t\\\\x00\n2\t\\N\t\\\\x0102\n')) },
      { send: copyIn('csv', Buffer.from('3,"th,ree",\\x03\n')) },
      { send: copyIn('binary', binary) },
      { send: cat(query('copy c from stdin'), serialize.copyData(Buffer.from('x\n')), serialize.copyDone()) },
      { send: cat(query('copy c from stdin'), serialize.copyFail('client says no')) },
      { send: query('copy c to stdout; copy (select * from c order by a) to stdout (format csv, header)') },
      { send: query('copy c to stdout (format binary)') },
      {
        send: cat(parse({ text: 'copy c to stdout (format csv)' }), bind({}), execute({}), sync()),
      },
      {
        send: cat(
          parse({ text: 'copy c from stdin' }),
          bind({}),
          execute({}),
          serialize.copyData(Buffer.from('9\tnine\t\\\\x09\n')),
          serialize.copyDone(),
          sync(),
        ),
      },
      { send: query('select count(*) from c') },
    ]);
    expect(out).toContain('C COPY 1');
    expect(out.some((l) => l.startsWith('E ERROR 22P02'))).toBe(true);
    expect(out.some((l) => l.startsWith('E ERROR 57014'))).toBe(true); // COPY from stdin failed: client says no
  });

  it('LISTEN/NOTIFY, NoticeResponse and ParameterStatus reach the client', async () => {
    const out = await same([
      { send: query("listen chan; notify chan, 'payload'; select pg_notify('chan', 'two')") },
      { send: query("do $$ begin raise notice 'hello from plpgsql'; raise warning 'careful'; end $$") },
      { send: query("set application_name = 'proto-test'; set datestyle = 'German'") },
    ]);
    expect(out).toContain('A chan|payload|');
    expect(out).toContain('N NOTICE 00000 hello from plpgsql');
    expect(out).toContain('S application_name');
    expect(out).toContain('S DateStyle');
  });

  it('notifications from another session arrive through the tunnel', async () => {
    const listener = await viaGateway();
    await listener.exchange(query('listen other'));
    const sender = await viaGateway();
    await sender.exchange(query("notify other, 'from afar'"));
    await listener.until(() => listener.messages.some((m) => m.type === 'A'));
    expect(render(listener.messages)).toContain('A other|from afar|');
    listener.close();
    sender.close();
  });

  it('refuses FunctionCall with 42501 and the session carries on', async () => {
    const c = await viaGateway();
    const f = bytes()
      .message('F', (m) => m.uint32(1598).int16(0).int16(0).int16(0))
      .build();
    const out = await c.exchange(f);
    const error = out.find((m) => m.type === 'E')!;
    expect(fieldsOf(error.body).C).toBe('42501');
    expect(render(await c.exchange(query('select 1'))).join()).toContain('C SELECT 1');
    c.close();
  });

  it('closes a session that sends a malformed or oversized message with a FATAL, and only that session', async () => {
    const bystander = await viaGateway();
    await bystander.exchange(query('begin'));
    const cases: [Buffer, string][] = [
      [bytes().char('Q').int32(2).build(), '08P01'],
      [
        bytes()
          .char('Q')
          .int32(200 << 20)
          .build(),
        '54000',
      ],
      [
        bytes()
          .message('Z', (m) => m.char('I'))
          .build(),
        '08P01',
      ],
      [
        bytes()
          .message('B', (m) => m.cstring('').cstring('').int16(5))
          .build(),
        '08P01',
      ],
      [
        bytes()
          .message('Q', (m) => m.raw('no terminator'))
          .build(),
        '08P01',
      ],
    ];
    for (const [bad, sqlstate] of cases) {
      const c = await viaGateway();
      c.socket.write(bad);
      await c.until(() => c.closed);
      const fatal = c.messages.find((m) => m.type === 'E');
      expect(fatal, `${bad.toString('hex')}`).toBeDefined();
      expect(fieldsOf(fatal!.body)).toMatchObject({ S: 'FATAL', C: sqlstate });
    }
    const out = render(await bystander.exchange(query('select 1; commit')));
    expect(out).toContain('C COMMIT');
    bystander.close();
  });

  it('answers protocol 3.2 with NegotiateProtocolVersion, and SSL/GSS requests with N', async () => {
    const { connect } = await import('node:net');
    const socket = connect({ host: '127.0.0.1', port: tunnel.port });
    const got: Buffer[] = [];
    socket.on('data', (c: Buffer) => got.push(c));
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      bytes()
        .packet((p) => p.int32(80877104))
        .build(),
    ); // GSSENCRequest
    socket.write(
      bytes()
        .packet((p) => p.int32(80877103))
        .build(),
    ); // SSLRequest
    socket.write(
      bytes()
        .packet((p) =>
          p
            .int32((3 << 16) | 2)
            .cstring('user')
            .cstring('hoop')
            .cstring('database')
            .cstring('prod-db')
            .cstring('_pq_.future')
            .cstring('x')
            .byte(0),
        )
        .build(),
    );
    const deadline = Date.now() + 10_000;
    while (Buffer.concat(got).length < 8 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const all = Buffer.concat(got);
    expect(all.subarray(0, 2).toString()).toBe('NN');
    expect(String.fromCharCode(all[2]!)).toBe('v');
    expect(all.readInt32BE(7)).toBe(0);
    expect(all.includes(Buffer.from('_pq_.future\0'))).toBe(true);
    socket.destroy();
    // psql asking for TLS and GSS first still gets in.
    const r = psql(tunnel.url.replace('sslmode=disable', 'sslmode=prefer&gssencmode=prefer'), [
      '-At',
      '-c',
      'select 1',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1');
  });

  async function sessions(): Promise<{ id: string; statements: number; identity?: { subject: string } }[]> {
    const r = await stack.cli(aubrey, ['sessions', 'list', '--json', '--identity', 'alice@example.com']);
    if (r.code !== 0) throw new Error(r.stderr);
    const parsed = JSON.parse(r.stdout);
    return Array.isArray(parsed) ? parsed : parsed.sessions;
  }
  async function sessionIds(): Promise<Set<string>> {
    return new Set((await sessions()).map((s) => s.id));
  }
});
