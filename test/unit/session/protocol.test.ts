/**
 * The relay's protocol core, message by message, with bytes built by hand: what it answers to each
 * client message (pass / refuse / hold / wait), how it follows the server's replies, and the session
 * model they drive. And the I/O shell over in-memory streams: messages split at every byte boundary,
 * pipelines written upstream in one write, statements held behind their durability barrier.
 */
import { Duplex } from 'node:stream';
import { serialize } from 'pg-protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import type {
  GateRequest,
  GateVerdict,
  SessionGate,
  StatementOutcome,
} from '../../../gateway/contracts/gate.js';
import { AUDIT_UNAVAILABLE } from '../../../gateway/contracts/refusal.js';
import { FrameReader } from '../../../gateway/pgwire/frames.js';
import { type ClientStep, POISON_SQL, ProtocolCore } from '../../../gateway/session/protocol.js';
import { Relay } from '../../../gateway/session/relay.js';
import { acceptStartup } from '../../../gateway/session/startup.js';
import { classify } from '../../../gateway/sql/classify.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { resolveNames } from '../../../gateway/sql/session-sql.js';
import { server } from './core-rig.js';

beforeAll(async () => {
  await loadSqlParser();
});

const { query, parse, bind, execute, sync, close } = serialize;

/** A gate that forwards everything (or what `refuse` says not to), judging names like the real one. */
class TestGate implements SessionGate {
  readonly recordRows = 10;
  readonly recordBytes = 1000;
  requests: (GateRequest & { judged?: string[] })[] = [];
  done: [string, StatementOutcome][] = [];
  lsn = 0;
  durable = 0;
  holds = false;
  waiters: { lsn: number; callback: (err?: Error) => void }[] = [];
  refuse?: (r: GateRequest) => boolean;

  check(request: GateRequest): GateVerdict {
    const resolved = request.portalRuns
      ? undefined
      : resolveNames(classify(request.sql), request.names).classification;
    this.requests.push({
      ...request,
      judged: resolved?.ok
        ? resolved.statements.map((s) => `${s.class}${s.unplaceable ? ' unplaceable' : ''}`)
        : undefined,
    });
    if (this.refuse?.(request))
      return {
        action: 'refuse',
        refusal: { sqlstate: '42501', routine: 'hoop_policy_denied', message: 'no' },
      };
    if (request.phase === 'parse') return { action: 'forward', statementIds: [] };
    const n = resolved?.ok ? Math.max(1, resolved.statements.length) : 1;
    const ids = Array.from({ length: n }, (_, i) => `${this.requests.length}.${i}`);
    return this.holds
      ? { action: 'forward', statementIds: ids, lsn: ++this.lsn }
      : { action: 'forward', statementIds: ids };
  }
  completed(id: string, outcome: StatementOutcome): void {
    this.done.push([id, outcome]);
  }
  whenDurable(lsn: number, callback: (err?: Error) => void): void {
    if (lsn <= this.durable) callback();
    else this.waiters.push({ lsn, callback });
  }
  commit(upTo: number, err?: Error) {
    this.durable = upTo;
    for (const w of this.waiters.splice(0)) w.callback(err);
  }
  recordFailed(): typeof AUDIT_UNAVAILABLE {
    return AUDIT_UNAVAILABLE;
  }
}
const framesOf = (buf: Buffer) => new FrameReader(1 << 20).push(buf);

function setup() {
  const gate = new TestGate();
  const toClient: Buffer[] = [];
  const core = new ProtocolCore(gate, { toClient: (b) => toClient.push(b) });
  const send = (buf: Buffer): ClientStep[] => framesOf(buf).map((f) => core.client(f));
  const reply = (...bufs: Buffer[]) => framesOf(Buffer.concat(bufs)).map((f) => core.server(f));
  return { gate, core, send, reply, toClient, done: () => gate.done };
}

const fieldOf = (message: Buffer, code: string) => {
  const body = message.subarray(5);
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    if (String.fromCharCode(body[i]!) === code) return body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return undefined;
};

describe('protocol core: client messages', () => {
  it('Query: passes, follows the result, reports rows and the tag', () => {
    const { send, reply, done } = setup();
    expect(send(query('select 1'))).toEqual([{ kind: 'pass' }]);
    expect(
      reply(
        server.rowDescription('a'),
        server.dataRow('1'),
        server.commandComplete('SELECT 1'),
        server.ready('I'),
      ),
    ).toEqual([undefined, undefined, undefined, undefined]);
    const outcomes = done();
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]![1]).toMatchObject({
      tag: 'SELECT 1',
      rows: 1,
      result: { columns: ['a'], rows: [['1']] },
    });
  });

  it('a refused Query becomes the poison; the server error is swapped for the typed refusal', () => {
    const { gate, send, reply } = setup();
    gate.refuse = () => true;
    const [step] = send(query('delete from t'));
    expect(step!.kind).toBe('refuse');
    expect((step as { bytes: Buffer }).bytes).toEqual(query(POISON_SQL));
    const [swapped, ready] = reply(server.error('42601', 'syntax error'), server.ready('I'));
    expect(fieldOf(swapped!, 'C')).toBe('42501');
    expect(fieldOf(swapped!, 'R')).toBe('hoop_policy_denied');
    expect(ready).toBeUndefined();
  });

  it('hold: a statement waits for its LSN; a lost record turns it into the poison and 58030', () => {
    const { gate, core, send, reply } = setup();
    gate.holds = true;
    const [step] = send(query('select 1'));
    expect(step).toMatchObject({ kind: 'hold', lsn: 1 });
    const held = (step as { held: Parameters<ProtocolCore['heldFailed']>[0] }).held;
    expect(core.heldFailed(held, new Error('disk full'))).toEqual(query(POISON_SQL));
    const [swapped] = reply(server.error('42601'), server.ready('I'));
    expect(fieldOf(swapped!, 'C')).toBe('58030');
    expect(fieldOf(swapped!, 'R')).toBe('hoop_audit_unavailable');
  });

  it('Parse/Bind/Execute/Sync: the model learns from ParseComplete and BindComplete', () => {
    const { core, gate, send, reply } = setup();
    send(
      Buffer.concat([
        parse({ name: 's', text: 'select 1' }),
        bind({ portal: 'p', statement: 's' }),
        execute({ portal: 'p' }),
        sync(),
      ]),
    );
    expect(gate.requests.map((r) => `${r.phase}:${r.sql}`)).toEqual(['parse:select 1', 'execute:select 1']);
    expect(core.model.snapshot().statements.size).toBe(0); // nothing confirmed yet
    reply(
      server.parseComplete(),
      server.bindComplete(),
      server.dataRow('1'),
      server.commandComplete('SELECT 1'),
    );
    const { statements, portals } = core.model.snapshot();
    expect(statements.get('s')?.text).toBe('select 1');
    expect(portals.get('p')?.text).toBe('select 1');
    reply(server.ready('I')); // the implicit transaction ends: its portal goes, the statement stays
    expect(core.model.snapshot().portals.size).toBe(0);
    expect(core.model.snapshot().statements.size).toBe(1);
  });

  it('extended protocol without masking: the recorded result has the columns a Describe returned', () => {
    const { send, reply, done } = setup();
    send(
      Buffer.concat([
        parse({ name: '', text: 'select 1 as a, 2 as b' }),
        bind({}),
        serialize.describe({ type: 'P', name: '' }),
        execute({}),
        sync(),
      ]),
    );
    reply(
      server.parseComplete(),
      server.bindComplete(),
      server.rowDescription('a', 'b'),
      server.dataRow('1', '2'),
      server.commandComplete('SELECT 1'),
      server.ready('I'),
    );
    expect(done()[0]![1].result).toEqual({ columns: ['a', 'b'], rows: [['1', '2']], truncated: false });
  });

  it('a pipeline of 20 000 Bind/Describe/Execute without Sync (libpq’s uniqviol): each Execute records its columns', () => {
    // Every Describe is answered after its Execute was forwarded; the Execute reads the columns when
    // its own answer starts. (Telling every queued Execute at each Describe's answer, and Array.shift
    // on the queue, made this quadratic: a libpq pipeline test hung through the gateway.)
    const { send, reply, done } = setup();
    const n = 20_000;
    send(parse({ name: 'insertion', text: 'insert into t values ($1) returning id' }));
    reply(server.parseComplete());
    const message = Buffer.concat([
      bind({ statement: 'insertion', values: ['1'] }),
      serialize.describe({ type: 'P', name: '' }),
      execute({}),
    ]);
    for (let i = 0; i < n; i++) send(message);
    const answer = Buffer.concat([
      server.bindComplete(),
      server.rowDescription('id'),
      server.dataRow('1'),
      server.commandComplete('INSERT 0 1'),
    ]);
    for (let i = 0; i < n; i++) reply(answer);
    send(sync());
    reply(server.ready('I'));
    const outcomes = done();
    expect(outcomes).toHaveLength(n);
    expect(outcomes.every(([, o]) => o.result?.columns[0] === 'id' && o.tag === 'INSERT 0 1')).toBe(true);
  });

  it('a failed Parse creates nothing; an error skips the rest of the pipeline up to Sync', () => {
    const { core, send, reply } = setup();
    send(
      Buffer.concat([
        parse({ name: 's', text: 'select nope' }),
        bind({ portal: '', statement: 's' }),
        execute({}),
        sync(),
      ]),
    );
    reply(server.error('42703'), server.ready('I'));
    expect(core.model.snapshot().statements.size).toBe(0);
    expect(core.idle).toBe(true);
  });

  it('SQL and protocol share one namespace: EXECUTE of a protocol-prepared statement is judged by its text', () => {
    const { gate, send, reply } = setup();
    send(Buffer.concat([parse({ name: 's1', text: 'delete from orders' }), sync()]));
    reply(server.parseComplete(), server.ready('I'));
    send(query('execute s1'));
    expect(gate.requests.at(-1)!.judged).toEqual(['write']);
  });

  it('route: PREPARE s1 AS SELECT 1, Close s1, Parse s1 = DELETE, EXECUTE s1 — judged as the DELETE', () => {
    const { gate, send, reply } = setup();
    send(query('prepare s1 as select 1'));
    reply(server.commandComplete('PREPARE'), server.ready('I'));
    send(Buffer.concat([close({ type: 'S', name: 's1' }), sync()]));
    reply(server.closeComplete(), server.ready('I'));
    send(Buffer.concat([parse({ name: 's1', text: 'delete from orders where id > 40' }), sync()]));
    reply(server.parseComplete(), server.ready('I'));
    send(query('execute s1'));
    expect(gate.requests.at(-1)!.judged).toEqual(['write']);
  });

  it('the same route pipelined (no replies yet): the name is unknown, EXECUTE refused as unplaceable', () => {
    const { gate, send } = setup();
    send(query('prepare s1 as select 1'));
    send(Buffer.concat([close({ type: 'S', name: 's1' }), sync()]));
    send(Buffer.concat([parse({ name: 's1', text: 'delete from orders' }), sync()]));
    send(query('execute s1'));
    expect(gate.requests.at(-1)!.judged).toEqual(['utility unplaceable']);
  });

  it('Bind of a statement with several possible definitions in flight is refused (hoop_name_unknown)', () => {
    const { send, reply } = setup();
    send(Buffer.concat([parse({ name: 's', text: 'select 1' }), sync()]));
    reply(server.parseComplete(), server.ready('I'));
    send(
      Buffer.concat([close({ type: 'S', name: 's' }), parse({ name: 's', text: 'delete from t' }), sync()]),
    );
    const [step] = send(bind({ portal: '', statement: 's' }));
    expect(step!.kind).toBe('refuse');
    expect((step as { refusal: { routine: string } }).refusal.routine).toBe('hoop_name_unknown');
  });

  it('within one pipeline segment, a name just redefined is certain: Close + Parse + Bind + Execute pass', () => {
    const { gate, send, reply } = setup();
    send(Buffer.concat([parse({ name: 's', text: 'select 1' }), sync()]));
    reply(server.parseComplete(), server.ready('I'));
    const steps = send(
      Buffer.concat([
        close({ type: 'S', name: 's' }),
        parse({ name: 's', text: 'select 2' }),
        bind({ statement: 's' }),
        execute({}),
        sync(),
      ]),
    );
    expect(steps.map((s) => s.kind)).toEqual(['pass', 'pass', 'pass', 'pass', 'pass']);
    expect(gate.requests.at(-1)!.sql).toBe('select 2');
  });

  it('DECLARE, then a protocol Execute of the cursor runs its query (pinned to the definition)', () => {
    const { gate, send, reply } = setup();
    send(query('begin; declare c cursor for select ssn from customers'));
    reply(server.commandComplete('BEGIN'), server.commandComplete('DECLARE CURSOR'), server.ready('T'));
    send(Buffer.concat([execute({ portal: 'c', rows: 1 }), sync()]));
    const last = gate.requests.at(-1)!;
    expect(last.portalRuns?.origin).toBe('declare');
    // As written: the gate resolves the names (search_path, catalog) when the portal runs.
    expect(last.portalRuns?.runs?.relations).toEqual(['customers']);
  });

  it('transaction ends drop portals; WITH HOLD cursors survive a commit, not a rollback; ROLLBACK TO drops its own', () => {
    const { core, send, reply } = setup();
    const events: string[] = [];
    core.model.onTransaction((e) =>
      events.push(`${e.type}${'implicit' in e && e.implicit ? ' (implicit)' : ''}`),
    );
    send(query('begin; declare a cursor with hold for select 1; declare b cursor for select 1; commit'));
    reply(
      server.commandComplete('BEGIN'),
      server.commandComplete('DECLARE CURSOR'),
      server.commandComplete('DECLARE CURSOR'),
      server.commandComplete('COMMIT'),
      server.ready('I'),
    );
    expect([...core.model.snapshot().portals.keys()]).toEqual(['a']);
    send(
      query(
        'begin; declare c cursor for select 1; savepoint s; declare d cursor for select 1; rollback to s',
      ),
    );
    reply(
      server.commandComplete('BEGIN'),
      server.commandComplete('DECLARE CURSOR'),
      server.commandComplete('SAVEPOINT'),
      server.commandComplete('DECLARE CURSOR'),
      server.commandComplete('ROLLBACK'),
      server.ready('T'),
    );
    expect([...core.model.snapshot().portals.keys()].sort()).toEqual(['a', 'c']);
    send(query('select 1/0'));
    reply(server.error('22012'), server.ready('E'));
    send(query('commit'));
    reply(server.commandComplete('ROLLBACK'), server.ready('I')); // COMMIT of a failed block is a rollback
    expect([...core.model.snapshot().portals.keys()]).toEqual(['a']);
    expect(events).toEqual([
      'begin',
      'commit',
      'commit (implicit)', // the ReadyForQuery after COMMIT: nothing left open
      'begin',
      'savepoint',
      'rollback-to',
      'rollback', // COMMIT of the failed block
      'commit (implicit)',
    ]);
  });
});

/** An in-memory socket: what the relay writes is collected; `feed` delivers bytes to the relay. */
class MemorySocket extends Duplex {
  readonly writes: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, callback: () => void): void {
    this.writes.push(chunk);
    callback();
  }
  feed(data: Buffer): void {
    this.emit('data', data);
  }
}

const options = { maxMessageBytes: 1 << 20, idleTimeoutMs: 0, maxSessionMs: 0 };

/** A relay over memory sockets whose gate holds every statement until `gate.commit(lsn)`. */
function holdingRelay() {
  const gate = new TestGate();
  gate.holds = true;
  const client = new MemorySocket();
  const upstream = new MemorySocket();
  new Relay(client, upstream, gate, options).start();
  return { gate, client, upstream };
}

describe('I/O shell', () => {
  it('keeps what a client sends after the handshake while the upstream is being opened', async () => {
    const client = new MemorySocket();
    const handshake = acceptStartup(client, { maxMessageBytes: 1 << 20 });
    client.push(serialize.startup({ user: 'u', database: 'd' }));
    const { leftover, late } = await handshake;
    // A pipelining client does not wait for ReadyForQuery: this arrives before the relay reads.
    client.push(query('select 1'));
    await new Promise((r) => setImmediate(r));
    const upstream = new MemorySocket();
    new Relay(client, upstream, new TestGate(), options).start(Buffer.concat([leftover, late!()]));
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(upstream.writes)).toEqual(query('select 1'));
  });

  const sslRequest = () => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(8, 0);
    b.writeInt32BE(80877103, 4);
    return b;
  };

  it('answers one SSLRequest N and refuses a second (0A000), as PostgreSQL does', async () => {
    const client = new MemorySocket();
    const handshake = acceptStartup(client, { maxMessageBytes: 1 << 20 });
    client.push(sslRequest());
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(client.writes).toString()).toBe('N');
    client.push(sslRequest());
    await expect(handshake).rejects.toMatchObject({ sqlstate: '0A000' });
  });

  it('refuses an SSLRequest once the transport is encrypted (the native listener’s TLS)', async () => {
    const client = new MemorySocket();
    const handshake = acceptStartup(client, { maxMessageBytes: 1 << 20, encrypted: true });
    client.push(sslRequest());
    await expect(handshake).rejects.toMatchObject({ sqlstate: '0A000' });
    expect(client.writes).toEqual([]);
  });

  it('one deadline for the whole handshake: packets that come in time do not extend it', async () => {
    const client = new MemorySocket();
    const handshake = acceptStartup(client, {
      maxMessageBytes: 1 << 20,
      deadline: Date.now() + 150,
      passwordCheck: async () => {},
    });
    const failed = handshake.catch((err: { sqlstate?: string }) => err);
    // The startup comes at once; the password never does: the deadline set at the start ends it.
    client.push(serialize.startup({ user: 'u', database: 'd' }));
    const started = Date.now();
    expect(await failed).toMatchObject({ sqlstate: '08006' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('ends a client that sends more than a message’s worth before the session is ready', async () => {
    const client = new MemorySocket();
    const handshake = acceptStartup(client, { maxMessageBytes: 1 << 20 });
    client.push(serialize.startup({ user: 'u', database: 'd' }));
    await handshake;
    client.push(Buffer.alloc((1 << 20) + 1));
    await new Promise((r) => setImmediate(r));
    expect(client.destroyed).toBe(true);
  });

  it('frames a pipeline split at every byte and writes it upstream unchanged, once per read', () => {
    const gate = new TestGate();
    const client = new MemorySocket();
    const upstream = new MemorySocket();
    new Relay(client, upstream, gate, options).start();
    const pipeline = Buffer.concat([
      parse({ name: 's', text: 'select $1::int' }),
      bind({ statement: 's', values: ['1'] }),
      execute({}),
      sync(),
      query('select 2'),
    ]);
    for (let i = 0; i < pipeline.length; i++) client.feed(pipeline.subarray(i, i + 1));
    expect(Buffer.concat(upstream.writes)).toEqual(pipeline);
    // A whole pipeline in one read leaves in one write.
    upstream.writes.length = 0;
    client.feed(pipeline);
    expect(upstream.writes).toHaveLength(1);
  });

  it('holds statements behind their barrier, in order, and releases a pipeline with one commit', async () => {
    const { gate, client, upstream } = holdingRelay();
    const pipeline = Buffer.concat([query('select 1'), query('select 2'), query('select 3')]);
    client.feed(pipeline);
    expect(upstream.writes).toHaveLength(0);
    gate.commit(3);
    await Promise.resolve();
    await Promise.resolve();
    expect(upstream.writes).toHaveLength(1);
    expect(upstream.writes[0]).toEqual(pipeline);
  });

  it('sends what comes before a held Execute with it, in one write, not split around the commit', async () => {
    const { gate, client, upstream } = holdingRelay();
    const statement = Buffer.concat([bind({ statement: '', values: [] }), execute({}), sync()]);
    client.feed(Buffer.concat([parse({ name: '', text: 'select 1' }), statement]));
    // The database would only wake up for a Parse and a Bind it cannot answer before the Sync.
    expect(upstream.writes).toHaveLength(0);
    gate.commit(gate.lsn);
    await Promise.resolve();
    await Promise.resolve();
    expect(upstream.writes).toHaveLength(1);
    expect(upstream.writes[0]).toEqual(Buffer.concat([parse({ name: '', text: 'select 1' }), statement]));
  });

  it('a failed commit sends the poison in the held statement’s place, and what follows still goes', async () => {
    const { gate, client, upstream } = holdingRelay();
    client.feed(Buffer.concat([query('select 1'), sync()]));
    gate.commit(1, new Error('disk full'));
    await Promise.resolve();
    expect(Buffer.concat(upstream.writes)).toEqual(Buffer.concat([query(POISON_SQL), sync()]));
  });

  it('stops reading a client that pipelines faster than the audit log commits, and resumes after', async () => {
    // libpq's uniqviol through the tunnel: 440 000 statements queued behind commits grew the gateway to 1.5 GB.
    const { gate, client, upstream } = holdingRelay();
    const statements = [parse({ name: 's', text: 'select $1::int' })];
    for (let i = 0; i < 2100; i++) statements.push(bind({ statement: 's', values: [`${i}`] }), execute({}));
    client.feed(Buffer.concat(statements));
    // Every Execute waits for its record, with what comes behind it; what is before the first waits with
    // it, so that the statement reaches the database in one write.
    expect(upstream.writes).toEqual([]);
    expect(client.isPaused()).toBe(true);
    gate.commit(gate.lsn);
    await Promise.resolve();
    await Promise.resolve();
    expect(Buffer.concat(upstream.writes)).toEqual(Buffer.concat(statements));
    expect(client.isPaused()).toBe(false);
  });
});
