/**
 * Protocol corners where PostgreSQL reads a client message differently from the usual, and the core
 * must judge it in the state the server will read it in (docs/security.md):
 * - COPY FROM STDIN: the server ignores Sync and fails the COPY on anything but CopyData, CopyDone,
 *   CopyFail; whether a forwarded COPY starts at all is known only from the server's reply;
 * - after an extended-protocol error the server discards everything up to the next Sync, a Query too;
 * - an answer that fits nothing forwarded means the sides are out of step: the session ends;
 * - the settings the parser depends on (client_encoding, standard_conforming_strings) must not change.
 * Before these, a Sync inside COPY or a Query sent while the server discarded left the core one
 * answer behind, so each later statement's rows went through the previous statement's masking filter.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ProtocolViolation } from '../../../gateway/pgwire/frames.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { client, coreRig, framesOf, kindOf, RigGate, server, settled } from './core-rig.js';

beforeAll(async () => {
  await loadSqlParser();
});

const { query, parse, bind, execute, sync, flush, copyData, copyDone, copyFail } = client;

describe('COPY FROM STDIN', () => {
  it('a Sync inside COPY is not sent (the server ignores it) and the next answers stay with their statements', () => {
    const { gate, send, reply } = coreRig();
    send(query('copy t from stdin'));
    reply(server.copyIn());
    expect(send(sync(), copyData('1\n'), sync(), copyDone()).map(kindOf)).toEqual([
      'drop',
      'pass',
      'drop',
      'pass',
    ]);
    reply(server.commandComplete('COPY 1'), server.ready('I'));
    send(query('select ssn from customers'));
    reply(
      server.rowDescription('ssn'),
      server.dataRow('x'),
      server.commandComplete('SELECT 1'),
      server.ready('I'),
    );
    expect(gate.outcomes()).toEqual([
      'copy t from stdin: COPY 1 rows=0',
      'select ssn from customers: SELECT 1 rows=1',
    ]);
  });

  it('what follows a COPY waits until the server starts it; then CopyData and CopyDone pass', async () => {
    const { send, reply } = coreRig();
    const [copy, data] = send(query('copy t from stdin'), copyData('1\n'));
    expect(copy!.kind).toBe('pass');
    expect(data!.kind).toBe('wait');
    reply(server.copyIn());
    expect(kindOf(await settled(data))).toBe('pass');
  });

  it('a COPY that fails to start releases what waited, judged as the server will read it', async () => {
    const { gate, send, reply } = coreRig();
    const [, next] = send(query('copy nope from stdin'), query('select 1'));
    expect(next!.kind).toBe('wait');
    reply(server.error('42P01'), server.ready('I'));
    expect(kindOf(await settled(next))).toBe('pass');
    expect(gate.requests.map((r) => r.sql)).toEqual(['copy nope from stdin', 'select 1']);
  });

  it('two COPYs in one Query: after the first CopyDone, the client waits for the second to start', async () => {
    const { send, reply } = coreRig();
    send(query('copy a from stdin; copy b from stdin'));
    reply(server.copyIn());
    expect(send(copyData('1\n'), copyDone()).map(kindOf)).toEqual(['pass', 'pass']);
    const [data] = send(copyData('2\n'));
    expect(data!.kind).toBe('wait');
    reply(server.commandComplete('COPY 1'), server.copyIn());
    expect(kindOf(await settled(data))).toBe('pass');
  });

  it('an extended-protocol COPY with the Sync libpq sends at once: that Sync is not sent, the one after CopyDone is', async () => {
    const { send, reply } = coreRig();
    const steps = send(parse({ text: 'copy t from stdin' }), bind({}), execute({}), sync());
    expect(steps.map((s) => s.kind)).toEqual(['pass', 'pass', 'pass', 'wait']);
    reply(server.parseComplete(), server.bindComplete(), server.copyIn());
    expect(kindOf(await settled(steps[3]))).toBe('drop');
    expect(send(copyData('1\n'), copyDone(), sync()).map(kindOf)).toEqual(['pass', 'pass', 'pass']);
    expect(reply(server.commandComplete('COPY 1'), server.ready('I'))).toEqual([undefined, undefined]);
  });

  it('CopyFail ends COPY mode; a COPY that fails on bad data ends it too (later COPY messages pass, ignored)', () => {
    const { send, reply } = coreRig();
    send(query('copy t from stdin'));
    reply(server.copyIn());
    expect(send(copyFail('no')).map(kindOf)).toEqual(['pass']);
    reply(server.error('57014'), server.ready('I'));
    send(query('copy t from stdin'));
    reply(server.copyIn(), server.error('22P02'), server.ready('I'));
    expect(send(copyData('x\n'), copyDone(), query('select 1')).map(kindOf)).toEqual([
      'pass',
      'pass',
      'pass',
    ]);
  });

  it('any other message inside COPY ends the session (PostgreSQL itself loses sync there)', () => {
    const { send, reply } = coreRig();
    send(query('copy t from stdin'));
    reply(server.copyIn());
    expect(() => send(query('select 1'))).toThrow(ProtocolViolation);
    expect(() => send(parse({ text: 'select 1' }))).toThrow(/during COPY FROM STDIN/);
  });

  it('a CopyInResponse no forwarded COPY asked for, or a CopyBothResponse, ends the session', () => {
    const { send, reply } = coreRig();
    send(query('select 1'));
    expect(() => reply(server.copyIn())).toThrow(/out of step/);
    const other = coreRig();
    other.send(query('copy t from stdin'));
    expect(() => other.reply(server.copyBoth())).toThrow(ProtocolViolation);
  });
});

describe('after an extended-protocol error, up to the next Sync', () => {
  it('a Query the server will discard is not sent, and the next answers stay with their statements', () => {
    const { gate, send, reply } = coreRig();
    send(bind({ statement: 'nope' }), flush());
    reply(server.error('26000'));
    expect(send(query('select 1'), execute({}), sync()).map(kindOf)).toEqual(['drop', 'drop', 'pass']);
    reply(server.ready('I'));
    send(query('select ssn from customers'));
    reply(
      server.rowDescription('ssn'),
      server.dataRow('x'),
      server.commandComplete('SELECT 1'),
      server.ready('I'),
    );
    expect(gate.outcomes()).toEqual(['select ssn from customers: SELECT 1 rows=1']);
  });

  it('messages sent after a Sync that followed the failed one run normally', () => {
    const { send, reply } = coreRig();
    send(bind({ statement: 'nope' }), sync());
    reply(server.error('26000'));
    expect(send(query('select 1')).map(kindOf)).toEqual(['pass']);
  });

  it('a statement whose decision was still pending (an approval) when the server began discarding is not sent', async () => {
    const gate = new RigGate();
    gate.slow = (r) => r.sql === 'select 2';
    const { send, reply } = coreRig(gate);
    const steps = send(bind({ statement: 'nope' }), query('select 2'));
    expect(steps[1]!.kind).toBe('wait');
    reply(server.error('26000'));
    expect(kindOf(await settled(steps[1]))).toBe('drop');
    expect(gate.outcomes()).toEqual(['select 2: skipped']);
  });

  // Found by the session-model fuzz (test/unit/fuzz/protocol-core.test.ts): a Query the server
  // discarded was taken to have dropped the unnamed statement, which the server still held.
  it('a Query forwarded before the error and discarded by the server leaves the unnamed statement in place', () => {
    const { core, send, reply } = coreRig();
    send(parse({ text: 'select ssn from customers' }));
    reply(server.parseComplete());
    send(bind({ statement: 'nope' }), query('select 1'));
    reply(server.error('26000'));
    send(sync());
    reply(server.ready('I'));
    expect(core.model.snapshot().statements.get('')?.text).toBe('select ssn from customers');
  });
});

describe('answers out of step end the session', () => {
  it('ReadyForQuery, a row, a CommandComplete or a ParseComplete nothing asked for', () => {
    for (const answer of [
      server.ready('I'),
      server.dataRow('1'),
      server.commandComplete('SELECT 1'),
      server.parseComplete(),
    ]) {
      const { reply } = coreRig();
      expect(() => reply(answer)).toThrow(/out of step/);
    }
    const { send, reply } = coreRig();
    send(parse({ text: 'select 1' }), sync());
    expect(() => reply(server.bindComplete())).toThrow(/out of step/);
  });
});

describe('settings the parser depends on', () => {
  it('client_encoding other than UTF8, or standard_conforming_strings off, reported by the server, ends the session', () => {
    for (const [name, value] of [
      ['client_encoding', 'SJIS'],
      ['client_encoding', 'BIG5'],
      ['standard_conforming_strings', 'off'],
    ] as const) {
      const { send, reply } = coreRig();
      send(query('select f()'));
      expect(() => reply(server.parameterStatus(name, value))).toThrow(ProtocolViolation);
    }
    const { send, reply } = coreRig();
    send(query("set application_name = 'x'"));
    expect(
      reply(
        server.parameterStatus('application_name', 'x'),
        server.parameterStatus('client_encoding', 'UTF8'),
      ),
    ).toEqual([undefined, undefined]);
  });
});

describe("the gateway's own notices keep the client's order", () => {
  /** A gate that says "waiting" for deletes, as the approvals hook does while a statement is held. */
  class WaitingGate extends RigGate {
    override check(request: Parameters<RigGate['check']>[0]) {
      if (request.phase === 'execute' && request.sql.startsWith('delete'))
        request.notify({ message: 'waiting', routine: 'hoop_approval_waiting' });
      return super.check(request);
    }
  }
  const types = (messages: Buffer[]) => messages.flatMap((m) => framesOf(m).map((f) => f.type));

  it('a notice about a pipelined statement follows the answers to the Syncs before it', () => {
    const { send, reply, toClient } = coreRig(new WaitingGate());
    send(parse({ text: 'select 1' }), bind({}), execute({}), sync());
    send(parse({ text: 'delete from t' }), bind({}), execute({}));
    expect(toClient).toEqual([]); // held back: the first statement's answer is not out yet
    const answers = reply(
      server.parseComplete(),
      server.bindComplete(),
      server.dataRow('1'),
      server.commandComplete('SELECT 1'),
      server.ready('I'),
    );
    // The ReadyForQuery passes with the notice right after it.
    expect(answers.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    expect(types([answers[4]!])).toEqual(['Z', 'N']);
    expect(toClient).toEqual([]);
  });

  it('with nothing before it, the notice goes out at once; Parse/Bind answers after the last Sync are not waited for', () => {
    const { send, toClient } = coreRig(new WaitingGate());
    send(parse({ text: 'delete from t' }), bind({}), execute({}));
    expect(types(toClient)).toEqual(['N']);
  });
});

describe('a Bind of a statement the model holds absent', () => {
  it('that the server accepts after all leaves the portal unusable, never its earlier definition', () => {
    const { send, reply } = coreRig();
    send(query('begin'));
    reply(server.commandComplete('BEGIN'), server.ready('T'));
    // The unnamed portal holds a harmless statement.
    send(parse({ name: 'h', text: "select 'harmless'" }), bind({ statement: 'h' }), sync());
    reply(server.parseComplete(), server.bindComplete(), server.ready('T'));
    // "x" is unknown to the model (as after a route the model missed): the server binds it anyway.
    const steps = send(bind({ statement: 'x' }), sync());
    expect(steps.map(kindOf)).toEqual(['pass', 'pass']);
    reply(server.bindComplete(), server.ready('T'));
    const [exec] = send(execute({}), sync());
    expect(exec!.kind).toBe('refuse');
    expect(exec!.kind === 'refuse' && exec.refusal.sqlstate).toBe('42501');
  });
});
