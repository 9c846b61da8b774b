/**
 * What the protocol core's tests share: a gate that judges names like the real one (classification +
 * the session model) and forwards everything unless told otherwise, the core driven message by
 * message, and server messages built by hand.
 */
import { serialize } from 'pg-protocol';
import type {
  GateRequest,
  GateVerdict,
  SessionGate,
  StatementOutcome,
} from '../../../gateway/contracts/gate.js';
import { AUDIT_UNAVAILABLE } from '../../../gateway/contracts/refusal.js';
import { FrameReader } from '../../../gateway/pgwire/frames.js';
import { type ClientStep, ProtocolCore } from '../../../gateway/session/protocol.js';
import { classify } from '../../../gateway/sql/classify.js';
import { resolveNames } from '../../../gateway/sql/session-sql.js';
import { bytes } from '../pgwire/bytes.js';

export class RigGate implements SessionGate {
  readonly recordRows = 10;
  readonly recordBytes = 1000;
  requests: GateRequest[] = [];
  done: [string, StatementOutcome][] = [];
  refuse?: (r: GateRequest) => boolean;
  /** Answer through a promise (the slow path: approvals, catalog loads) when this says so. */
  slow?: (r: GateRequest) => boolean;
  /** Statement ids of forwarded texts, so tests can tell which statement an outcome belongs to. */
  readonly textOf = new Map<string, string>();

  check(request: GateRequest): GateVerdict | Promise<GateVerdict> {
    const verdict = this.decide(request);
    return this.slow?.(request) ? Promise.resolve(verdict) : verdict;
  }

  private decide(request: GateRequest): GateVerdict {
    this.requests.push(request);
    if (this.refuse?.(request))
      return {
        action: 'refuse',
        refusal: { sqlstate: '42501', routine: 'hoop_policy_denied', message: 'no' },
      };
    if (request.phase === 'parse') return { action: 'forward', statementIds: [] };
    const resolved = request.portalRuns
      ? undefined
      : resolveNames(classify(request.sql), request.names).classification;
    const texts =
      resolved?.ok && resolved.statements.length > 0 ? resolved.statements.map((s) => s.text) : [request.sql];
    const ids = texts.map((text, i) => {
      const id = `${this.requests.length}.${i}`;
      this.textOf.set(id, text);
      return id;
    });
    return { action: 'forward', statementIds: ids };
  }

  completed(id: string, outcome: StatementOutcome): void {
    this.done.push([id, outcome]);
  }
  whenDurable(_lsn: number, callback: (err?: Error) => void): void {
    callback();
  }
  recordFailed(): typeof AUDIT_UNAVAILABLE {
    return AUDIT_UNAVAILABLE;
  }
  /** Text → what was recorded for it (tag or SQLSTATE, rows, or skipped). */
  outcomes(): string[] {
    return this.done.map(([id, o]) => {
      const what = o.skipped ? 'skipped' : o.sqlstate ? `error ${o.sqlstate}` : `${o.tag} rows=${o.rows}`;
      return `${this.textOf.get(id)}: ${what}`;
    });
  }
}

export const framesOf = (buf: Buffer) => new FrameReader(1 << 20).push(buf);

export function coreRig(gate = new RigGate()) {
  const toClient: Buffer[] = [];
  const core = new ProtocolCore(gate, { toClient: (b) => toClient.push(b) });
  const send = (...bufs: Buffer[]): ClientStep[] => framesOf(Buffer.concat(bufs)).map((f) => core.client(f));
  const reply = (...bufs: Buffer[]) => framesOf(Buffer.concat(bufs)).map((f) => core.server(f));
  return { gate, core, send, reply, toClient };
}

/** Server messages, built by hand. */
export const server = {
  parseComplete: () => bytes().message('1').build(),
  bindComplete: () => bytes().message('2').build(),
  closeComplete: () => bytes().message('3').build(),
  noData: () => bytes().message('n').build(),
  rowDescription: (...names: string[]) =>
    bytes()
      .message('T', (b) => {
        b.int16(names.length);
        for (const n of names) b.cstring(n).int32(0).int16(0).int32(25).int16(-1).int32(-1).int16(0);
        return b;
      })
      .build(),
  dataRow: (...values: string[]) =>
    bytes()
      .message('D', (b) => {
        b.int16(values.length);
        for (const v of values) b.int32(Buffer.byteLength(v)).raw(v);
        return b;
      })
      .build(),
  commandComplete: (tag: string) =>
    bytes()
      .message('C', (b) => b.cstring(tag))
      .build(),
  error: (code: string, message = 'boom') =>
    bytes()
      .message('E', (b) =>
        b.char('S').cstring('ERROR').char('C').cstring(code).char('M').cstring(message).byte(0),
      )
      .build(),
  ready: (status: 'I' | 'T' | 'E') =>
    bytes()
      .message('Z', (b) => b.char(status))
      .build(),
  copyIn: () =>
    bytes()
      .message('G', (b) => b.byte(0).int16(0))
      .build(),
  copyBoth: () =>
    bytes()
      .message('W', (b) => b.byte(0).int16(0))
      .build(),
  parameterStatus: (name: string, value: string) =>
    bytes()
      .message('S', (b) => b.cstring(name).cstring(value))
      .build(),
};

export const client = {
  ...serialize,
  copyData: (text: string) => serialize.copyData(Buffer.from(text)),
};

/** What a message that had to wait (`wait`) turns into once the core can judge it. */
export function settled(step: ClientStep | undefined): Promise<ClientStep> {
  if (step?.kind !== 'wait') throw new Error(`expected a wait, got ${step?.kind}`);
  return step.until;
}

/** The step's kind, and 'drop' for a message the core keeps back (replaced by nothing). */
export function kindOf(step: ClientStep): string {
  if (step.kind === 'replace' && step.bytes.length === 0) return 'drop';
  return step.kind;
}
