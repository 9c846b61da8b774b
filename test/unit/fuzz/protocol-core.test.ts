/**
 * Property-based fuzzing of the protocol core and its session model (issue 12, item 8), two ways:
 *
 * - **implausible**: generated client messages (well-formed, malformed, junk types) interleaved with
 *   generated server messages that may fit nothing forwarded. The core may end the session with a
 *   ProtocolViolation, never with any other error; every Query, Parse and Execute it forwards was put
 *   to the gate first, with the text it forwards; a refused one never reaches the server as written.
 * - **plausible**: the same client messages against a small simulation of PostgreSQL's extended
 *   protocol (statements, portals, errors discarding up to Sync, implicit transactions ending at Sync
 *   or a Query). Whenever nothing is in flight, the model's confirmed statements and portals equal the
 *   simulation's: the model never claims a definition the server could not hold.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Frame, ProtocolViolation } from '../../../gateway/pgwire/frames.js';
import {
  parseBind,
  parseDescribeOrClose,
  parseExecute,
  parseParse,
  parseQuery,
} from '../../../gateway/pgwire/frontend.js';
import { type ClientStep, POISON_SQL } from '../../../gateway/session/protocol.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { bytes } from '../pgwire/bytes.js';
import { client, coreRig, framesOf, RigGate, server } from '../session/core-rig.js';
import { fuzz, fuzzAsync } from './budget.js';

beforeAll(async () => {
  await loadSqlParser();
});

const NAMES = ['', 's1', 's2'];
const PORTALS = ['', 'c', 'p'];
const SQL = [
  'SELECT 1',
  'select ssn from customers',
  'DELETE FROM orders',
  'PREPARE s1 AS SELECT 1',
  'PREPARE s2 AS DELETE FROM orders',
  'EXECUTE s1',
  'EXECUTE s2',
  'DEALLOCATE s1',
  'DEALLOCATE ALL',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'DECLARE c CURSOR FOR SELECT 1',
  'DECLARE p CURSOR WITH HOLD FOR SELECT 2',
  'FETCH c',
  'CLOSE c',
  'CLOSE ALL',
  'DISCARD ALL',
  'SELECT 1; DEALLOCATE s1; PREPARE s1 AS DELETE FROM orders',
  'COPY t FROM STDIN',
  'SELEC oops',
  'SELECT * FROM missing',
  '',
];

const name = fc.constantFrom(...NAMES);
const portal = fc.constantFrom(...PORTALS);
const sql = fc.constantFrom(...SQL);

/** Client messages: what real clients send, FunctionCall, COPY messages out of place, junk. */
const clientMessage = fc.oneof(
  sql.map((s) => client.query(s)),
  fc.tuple(name, sql).map(([n, s]) => client.parse({ name: n, text: s })),
  fc.tuple(portal, name).map(([p, s]) => client.bind({ portal: p, statement: s, values: [] })),
  portal.map((p) => client.execute({ portal: p })),
  fc
    .tuple(fc.constantFrom<'S' | 'P'>('S', 'P'), name, portal)
    .map(([t, n, p]) => client.describe({ type: t, name: t === 'S' ? n : p })),
  fc
    .tuple(fc.constantFrom<'S' | 'P'>('S', 'P'), name, portal)
    .map(([t, n, p]) => client.close({ type: t, name: t === 'S' ? n : p })),
  fc.constant(client.sync()),
  fc.constant(client.sync()),
  fc.constant(client.flush()),
  fc.constant(client.copyData('1\n')),
  fc.constant(client.copyDone()),
  fc.constant(client.copyFail('no')),
  fc.constant(
    bytes()
      .message('F', (b) => b.int32(1234).int16(0).int16(0).int16(0))
      .build(),
  ),
  fc.tuple(fc.constantFrom(...'QPBEDCSFHdcfXpz\0'), fc.uint8Array({ maxLength: 24 })).map(([t, body]) =>
    bytes()
      .message(t, (b) => b.raw(Buffer.from(body)))
      .build(),
  ),
);

/** Server messages, with no regard to what was asked. */
const serverMessage = fc.oneof(
  fc.constant(server.parseComplete()),
  fc.constant(server.bindComplete()),
  fc.constant(server.closeComplete()),
  fc.constant(server.noData()),
  fc.constant(server.rowDescription('ssn')),
  fc.constant(server.dataRow('123-45-6789')),
  fc
    .constantFrom(
      'SELECT 1',
      'PREPARE',
      'DEALLOCATE',
      'BEGIN',
      'COMMIT',
      'ROLLBACK',
      'DECLARE CURSOR',
      'CLOSE CURSOR',
      'DELETE 3',
      'COPY 1',
      'FETCH 1',
      'DISCARD ALL',
      'CLOSE CURSOR ALL',
      'DEALLOCATE ALL',
      '',
      'X',
    )
    .map(server.commandComplete),
  fc.constantFrom('42601', '42P05', '26000', '34000', '25P02', '57014').map((c) => server.error(c)),
  fc.constantFrom<'I' | 'T' | 'E'>('I', 'T', 'E').map(server.ready),
  fc.constant(server.copyIn()),
  fc.constant(server.copyBoth()),
  fc.constant(bytes().message('s').build()),
  fc.constant(bytes().message('I').build()),
  fc.constant(
    bytes()
      .message('t', (b) => b.int16(0))
      .build(),
  ),
  fc
    .constantFrom(['client_encoding', 'UTF8'], ['client_encoding', 'SJIS'], ['application_name', 'x'])
    .map(([k, v]) => server.parameterStatus(k, v)),
  fc.tuple(fc.constantFrom(...'DTECZ12GNnstSAc'), fc.uint8Array({ maxLength: 16 })).map(([t, body]) =>
    bytes()
      .message(t, (b) => b.raw(Buffer.from(body)))
      .build(),
  ),
);

/** Call `f`; a ProtocolViolation ends the session (returned), any other error fails the property. */
function violationOr<T>(f: () => T): T | ProtocolViolation {
  try {
    return f();
  } catch (err) {
    if (err instanceof ProtocolViolation) return err;
    throw err;
  }
}

/** The bytes the relay would send upstream for a step (a hold is sent once durable: at once here). */
function forwarded(frame: Frame, step: ClientStep): Buffer | undefined {
  if (step.kind === 'pass') return frame.bytes;
  if (step.kind === 'replace' || step.kind === 'refuse') return step.bytes;
  if (step.kind === 'hold') return step.held.bytes;
  return undefined;
}

/** The text a forwarded message makes the server run, if it runs one. */
function textOf(bytes: Buffer): { type: string; text: string }[] {
  return framesOf(bytes).flatMap((f) => {
    if (f.type === 'Q') return [{ type: 'Q', text: parseQuery(f.body).sql }];
    if (f.type === 'P') return [{ type: 'P', text: parseParse(f.body).sql }];
    return [];
  });
}

describe('fuzz: the protocol core against implausible servers', () => {
  it('only ProtocolViolations; everything that runs was judged; what the gate refused runs as poison', async () => {
    await fuzzAsync(
      'protocol core: implausible interleavings',
      300,
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            clientMessage.map((c) => ({ c })),
            serverMessage.map((s) => ({ s })),
          ),
          {
            maxLength: 40,
          },
        ),
        async (events) => {
          const gate = new RigGate();
          gate.refuse = (r) => /delete/i.test(r.sql) || /delete/i.test(r.portalRuns?.text ?? '');
          const { core } = coreRig(gate);
          const waits: Promise<unknown>[] = [];
          for (const event of events) {
            if ('s' in event) {
              const answered = violationOr(() => framesOf(event.s).map((f) => core.server(f)));
              if (answered instanceof ProtocolViolation) break;
              continue;
            }
            const [frame] = framesOf(event.c);
            const before = gate.requests.length;
            const step = violationOr(() => core.client(frame!));
            if (step instanceof ProtocolViolation) break;
            if (step.kind === 'terminate') break;
            if (step.kind === 'wait') {
              waits.push(step.until.catch((err) => expect(err).toBeInstanceOf(ProtocolViolation)));
              continue;
            }
            checkJudged(frame!, step, gate, before);
          }
          // The session ends: every wait settles, nothing throws.
          core.close();
          await Promise.all(waits);
        },
      ),
    );
  });
});

/** A forwarded Query, Parse or Execute went to the gate, in this call, with the text that runs. */
function checkJudged(frame: Frame, step: ClientStep, gate: RigGate, before: number): void {
  const bytes = forwarded(frame, step);
  if (!bytes || bytes.length === 0) return;
  const asked = gate.requests.slice(before);
  for (const { type, text } of textOf(bytes)) {
    if (text === POISON_SQL) {
      expect(step.kind).toBe('refuse');
      continue;
    }
    expect(type).toBe(frame.type);
    expect(asked.map((r) => r.sql)).toContain(text);
    expect(text).not.toMatch(/delete/i);
  }
  if (frame.type === 'E' && step.kind !== 'refuse') {
    expect(asked.map((r) => r.phase)).toContain('execute');
    expect(asked.at(-1)?.portal).toBe(parseExecute(frame.body).portal);
  }
}

// ==== a small PostgreSQL: the extended protocol's named objects ===================================

const GOOD = new Set(['SELECT 1', 'select ssn from customers', 'DELETE FROM orders']);

/**
 * What PostgreSQL does with each message, as far as named statements and portals go (postgres.c):
 * an error discards everything up to Sync; Sync and every simple Query end the implicit transaction
 * (dropping its portals); a Parse of the unnamed statement drops the old one before parsing; Bind
 * looks the statement up before it replaces the unnamed portal.
 */
class MiniServer {
  readonly statements = new Map<string, string>();
  readonly portals = new Map<string, string>();
  private discarding = false;

  answer(frame: Frame): Buffer[] {
    if (this.discarding && frame.type !== 'S') return [];
    switch (frame.type) {
      case 'Q':
        return this.query(parseQuery(frame.body).sql);
      case 'P':
        return this.parse(parseParse(frame.body));
      case 'B':
        return this.bind(parseBind(frame.body));
      case 'E': {
        const { portal } = parseExecute(frame.body);
        if (!this.portals.has(portal)) return this.fail('34000');
        return [server.dataRow('1'), server.commandComplete('SELECT 1')];
      }
      case 'D': {
        const { target, name } = parseDescribeOrClose(frame.body);
        if (target === 'S')
          return this.statements.has(name)
            ? [
                bytes()
                  .message('t', (b) => b.int16(0))
                  .build(),
                server.rowDescription('a'),
              ]
            : this.fail('26000');
        return this.portals.has(name) ? [server.rowDescription('a')] : this.fail('34000');
      }
      case 'C': {
        const { target, name } = parseDescribeOrClose(frame.body);
        (target === 'S' ? this.statements : this.portals).delete(name);
        return [server.closeComplete()];
      }
      case 'S':
        this.discarding = false;
        this.portals.clear();
        return [server.ready('I')];
      default:
        return [];
    }
  }

  private fail(code: string): Buffer[] {
    // The transaction is aborted; its portals go when it ends (at Sync), unusable until then.
    this.discarding = true;
    return [server.error(code)];
  }

  private query(sql: string): Buffer[] {
    this.statements.delete('');
    this.portals.clear();
    if (!GOOD.has(sql)) return [server.error('42601'), server.ready('I')];
    return [
      server.rowDescription('a'),
      server.dataRow('1'),
      server.commandComplete('SELECT 1'),
      server.ready('I'),
    ];
  }

  private parse(p: { statement: string; sql: string }): Buffer[] {
    if (p.statement === '') this.statements.delete('');
    else if (this.statements.has(p.statement)) return this.fail('42P05');
    if (!GOOD.has(p.sql)) return this.fail('42601');
    this.statements.set(p.statement, p.sql);
    return [server.parseComplete()];
  }

  private bind(b: { portal: string; statement: string }): Buffer[] {
    const text = this.statements.get(b.statement);
    if (text === undefined) return this.fail('26000');
    if (b.portal !== '' && this.portals.has(b.portal)) return this.fail('42P03');
    this.portals.set(b.portal, text);
    return [server.bindComplete()];
  }
}

/** Client messages of the extended protocol (and simple Queries of single statements). */
const extendedMessage = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('SELECT 1', 'SELEC oops').map((s) => client.query(s)) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        name,
        fc.constantFrom('SELECT 1', 'select ssn from customers', 'SELEC oops', 'DELETE FROM orders'),
      )
      .map(([n, s]) => client.parse({ name: n, text: s })),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(portal, name).map(([p, s]) => client.bind({ portal: p, statement: s, values: [] })),
  },
  { weight: 2, arbitrary: portal.map((p) => client.execute({ portal: p })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom<'S' | 'P'>('S', 'P'), name, portal)
      .map(([t, n, p]) => client.describe({ type: t, name: t === 'S' ? n : p })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom<'S' | 'P'>('S', 'P'), name, portal)
      .map(([t, n, p]) => client.close({ type: t, name: t === 'S' ? n : p })),
  },
  { weight: 3, arbitrary: fc.constant(client.sync()) },
);

describe('fuzz: the session model against a simulated server', () => {
  it('whenever nothing is in flight, the model holds exactly what the server holds', () => {
    fuzz(
      'session model: simulated server',
      300,
      fc.property(fc.array(fc.tuple(extendedMessage, fc.nat({ max: 3 })), { maxLength: 40 }), (script) => {
        const gate = new RigGate();
        gate.refuse = (r) => /delete/i.test(r.sql);
        const { core } = coreRig(gate);
        const pg = new MiniServer();
        const replies: Buffer[] = [];
        const deliver = (n: number) => {
          for (const reply of replies.splice(0, n)) for (const f of framesOf(reply)) core.server(f);
        };
        const compare = () => {
          const { statements, portals } = core.model.snapshot();
          expect(new Map([...statements].map(([k, d]) => [k, d.text]))).toEqual(pg.statements);
          expect(new Map([...portals].map(([k, d]) => [k, d.text]))).toEqual(pg.portals);
        };
        for (const [message, answered] of script) {
          const [frame] = framesOf(message);
          const step = core.client(frame!);
          expect(step.kind).not.toBe('wait');
          const out = forwarded(frame!, step);
          if (out) for (const f of framesOf(out)) replies.push(...pg.answer(f));
          // The server's answers come later, some now, some after more messages.
          deliver(answered);
          if (replies.length === 0 && core.idle) compare();
        }
        core.client(framesOf(client.sync())[0]!);
        replies.push(...pg.answer(framesOf(client.sync())[0]!));
        deliver(replies.length);
        expect(core.idle).toBe(true);
        compare();
      }),
    );
  });
});
