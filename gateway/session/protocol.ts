/**
 * The relay's protocol core: no sockets, no timers. The I/O shell (relay.ts) hands it each client
 * message and each server message; it answers per message, in order:
 *
 * - client → server: `pass` (forward the same bytes), `replace` (other bytes), `refuse` (a poison
 *   message that fails at exactly this point; the server's error is later swapped for the refusal),
 *   `hold` (forward once the audit log's durable position reaches `lsn`), or `wait` (the slow path:
 *   an approval or a catalog load; later messages queue behind it, in order);
 * - server → client: undefined to pass the frame, or the bytes to send instead.
 *
 * It owns the session model (session-model.ts): statements and portals by name, made by SQL or by
 * the protocol, learnt from the server's replies; every use of a name (EXECUTE, FETCH, Bind, Execute,
 * Describe) is judged by the definition the server will really run, and a name it cannot pin down is
 * refused. Handlers are named after the protocol messages they answer.
 */
import { serialize } from 'pg-protocol';
import type { ClassifiedStatement } from '../../src/shared/statement.js';
import type { GateRequest, GateVerdict, Notice, SessionGate } from '../contracts/gate.js';
import type { PortalDef, StatementDef } from '../contracts/names.js';
import type { Refusal } from '../contracts/refusal.js';
import {
  decodeCommandComplete,
  decodeFields,
  decodeReadyForQuery,
  decodeRowDescription,
  type FieldDescription,
  MessageWriter,
  type TransactionStatus,
} from '../pgwire/backend.js';
import { type Frame, ProtocolViolation } from '../pgwire/frames.js';
import { parseBind, parseDescribeOrClose, parseExecute, parseParse, parseQuery } from '../pgwire/frontend.js';
import { definitionRun, preparedInner, resolveNames, sessionEffectOf } from '../sql/session-sql.js';
import { classifySyntax } from '../sql/syntax.js';
import { noticeMessage, refusalResponse } from './edge.js';
import {
  countRow,
  expandFormats,
  formatOf,
  outcomeOf,
  type Running,
  recordingFull,
  setColumns,
  startRunning,
} from './results.js';
import { type Effect, type InFlight, SessionModel } from './session-model.js';

/** What to do with one client message. */
export type ClientStep =
  | { kind: 'pass' }
  | { kind: 'replace'; bytes: Buffer }
  | { kind: 'refuse'; bytes: Buffer; refusal: Refusal }
  | { kind: 'hold'; lsn: number; held: Held }
  | { kind: 'wait'; until: Promise<ClientStep> }
  | { kind: 'terminate' };

/** A statement forwarded behind a durability barrier: if its records are lost, `poison` replaces it. */
export interface Held {
  readonly bytes: Buffer;
  readonly entry: Expected;
}

/** What the database will answer to one forwarded message. */
export type Expected =
  | {
      kind: 'query';
      statements: Running[];
      index: number;
      refusal?: Refusal;
      /** Per statement: what it does to the session's names or transaction when it completes. */
      effects: (InFlight | undefined)[];
      unnamed: InFlight;
      started: boolean;
    }
  | { kind: 'parse' | 'bind' | 'close'; refusal?: Refusal; effect?: InFlight }
  | { kind: 'describe'; statement?: StatementDef; portal?: PortalDef }
  | { kind: 'execute'; statement?: Running; portal: PortalDef; effect?: InFlight }
  | { kind: 'sync' }
  | { kind: 'function'; refusal: Refusal; unnamed: InFlight };

/** Text that fails to parse in every PostgreSQL version: the "poison" a refused statement becomes. */
export const POISON_SQL = 'HOOP STATEMENT REFUSED BY THE GATEWAY';
/** Name of the poison Parse sent in an Execute's place: never created (it fails), so the client's own statements are untouched. */
export const POISON_STATEMENT = 'hoop_refused_statement';

const FUNCTION_CALL_REFUSED: Refusal = {
  sqlstate: '42501',
  routine: 'hoop_policy_denied',
  message: 'hoop: the fast-path FunctionCall message is not allowed through the gateway',
  hint: 'Call the function from SQL (SELECT fn(...)) so policy can check it.',
};

function unknownName(what: 'prepared statement' | 'portal', name: string): Refusal {
  const again =
    what === 'portal'
      ? 'Close the portal (or CLOSE the cursor) and bind or declare it again.'
      : 'Close the statement (or DEALLOCATE it) and prepare it again.';
  return {
    sqlstate: '42501',
    routine: 'hoop_name_unknown',
    message: `hoop: ${what} "${name}" may hold one of several definitions the gateway cannot tell apart, so it is not used`,
    detail:
      'A message that would define it is still in flight, and which definition the server keeps depends on its outcome.',
    hint: again,
  };
}

function portalAbsent(name: string): Refusal {
  return {
    sqlstate: '42501',
    routine: 'hoop_policy_denied',
    message: `hoop: portal "${name}" was not bound through the gateway from a statement it checked`,
    hint: 'Bind portals to statements prepared with Parse or PREPARE, or DECLARE cursors, before executing them.',
  };
}

export interface CoreOutput {
  /** Bytes for the client now (notices from the gate, ahead of the statement's answer). */
  toClient(bytes: Buffer): void;
}

export class ProtocolCore {
  readonly model = new SessionModel();
  private readonly expected: Expected[] = [];
  private status: TransactionStatus;
  /** Pipeline segment of the next client message: it changes after every Sync, Query and FunctionCall. */
  private group = 1;
  /** The database ended the session with a FATAL of its own, which the client has already seen. */
  upstreamSentFatal = false;
  /** Aborts the gate's decision in progress (an approval wait) on cancel or disconnect. */
  private abortDecision: ((reason: Error) => void) | undefined;

  constructor(
    private readonly gate: SessionGate,
    private readonly out: CoreOutput,
    initialStatus: TransactionStatus = 'I',
  ) {
    this.status = initialStatus;
  }

  get transactionStatus(): TransactionStatus {
    return this.status;
  }

  /** Nothing forwarded is waiting for an answer. */
  get idle(): boolean {
    return this.expected.length === 0;
  }

  // ==== client → server ============================================================================

  client(frame: Frame): ClientStep {
    switch (frame.type) {
      case 'Q':
        return this.Query(frame);
      case 'P':
        return this.Parse(frame);
      case 'B':
        return this.Bind(frame);
      case 'E':
        return this.Execute(frame);
      case 'D':
        return this.Describe(frame);
      case 'C':
        return this.Close(frame);
      case 'S':
        return this.Sync();
      case 'F':
        return this.FunctionCall();
      case 'X':
        return { kind: 'terminate' };
      case 'H': // Flush
      case 'd': // CopyData
      case 'c': // CopyDone
      case 'f': // CopyFail
        return { kind: 'pass' };
      default:
        throw new ProtocolViolation(`unexpected message type "${printable(frame.type)}" from the client`);
    }
  }

  private Query(frame: Frame): ClientStep {
    const { sql } = parseQuery(frame.body);
    const group = ++this.group;
    this.group++;
    const names = this.model.view(group);
    return this.decide({ phase: 'query', sql, names, transactionStatus: this.status }, (verdict) => {
      const unnamed = this.model.expect({ on: 'unnamed', op: 'drop' }, group);
      if (verdict.action === 'refuse') {
        this.expected.push({
          kind: 'query',
          statements: [],
          index: 0,
          refusal: verdict.refusal,
          effects: [],
          unnamed,
          started: false,
        });
        return this.poison(serialize.query(POISON_SQL), verdict.refusal);
      }
      this.sendNotices(verdict.notices);
      const statements = verdict.statementIds.map((id, i) => startRunning(id, verdict.filters?.[i]));
      // What each statement does to the session, EXECUTE included: it does what its statement does
      // (a protocol-prepared DEALLOCATE ALL, DECLARE or COMMIT run by SQL EXECUTE).
      const resolved = resolveNames(classifySyntax(sql), names).classification;
      const effects = resolved.ok
        ? resolved.statements.map((stmt) => this.expectEffect(effectOf(executedBy(stmt), this.model), group))
        : [];
      const entry: Expected = { kind: 'query', statements, index: 0, effects, unnamed, started: false };
      this.expected.push(entry);
      return this.forward(verdict, frame.bytes, entry);
    });
  }

  private Parse(frame: Frame): ClientStep {
    const parse = parseParse(frame.body);
    const group = this.group;
    const names = this.model.view(group);
    return this.decide(
      {
        phase: 'parse',
        sql: parse.sql,
        statementName: parse.statement,
        names,
        transactionStatus: this.status,
      },
      (verdict) => {
        // What the statement names, as written: the gate resolves the names when it runs (the server
        // re-analyses a prepared statement when search_path has changed).
        const classification = classifySyntax(parse.sql);
        const def: StatementDef = {
          id: this.model.id(),
          name: parse.statement,
          origin: 'parse',
          text: parse.sql,
          runs: classification.ok ? classification.statements[0] : undefined,
        };
        if (verdict.action === 'refuse') {
          // Same statement name: Postgres reports the syntax error before any name clash, and a
          // refused Parse of the unnamed statement still drops the old one, here as there.
          const effect = parse.statement === '' ? this.model.expect(defineStatement(def), group) : undefined;
          this.expected.push({ kind: 'parse', refusal: verdict.refusal, effect });
          return this.poison(serialize.parse({ name: parse.statement, text: POISON_SQL }), verdict.refusal);
        }
        const effect = this.model.expect(defineStatement(def), group);
        this.expected.push({ kind: 'parse', effect });
        return { kind: 'pass' };
      },
    );
  }

  private Bind(frame: Frame): ClientStep {
    const bind = parseBind(frame.body);
    const group = this.group;
    const statement = this.model.view(group).statement(bind.statement);
    if (statement.state === 'unknown')
      return this.refuseUse(unknownName('prepared statement', bind.statement));
    let effect: InFlight | undefined;
    if (statement.state === 'known') {
      const s = statement.def;
      const def: PortalDef = {
        id: this.model.id(),
        name: bind.portal,
        origin: 'bind',
        statement: s,
        text: s.text,
        runs: s.runs,
        hold: false,
        parameters: bind.parameters,
        parameterFormats: bind.parameterFormats,
        resultFormats: bind.resultFormats,
      };
      effect = this.model.expect({ on: 'portal', op: 'define', name: bind.portal, def }, group);
    }
    // An absent statement: Postgres refuses the Bind ("does not exist"), as it would directly.
    this.expected.push({ kind: 'bind', effect });
    return { kind: 'pass' };
  }

  private Execute(frame: Frame): ClientStep {
    const { portal: name } = parseExecute(frame.body);
    const group = this.group;
    const names = this.model.view(group);
    const portal = names.portal(name);
    if (portal.state === 'unknown') return this.refuseUse(unknownName('portal', name));
    // A portal the session does not hold: nothing the gateway checked would run, so it is refused.
    if (portal.state === 'absent') return this.refuseUse(portalAbsent(name));
    const def = portal.def;
    // A portal of a protocol Parse runs that text (which may itself EXECUTE or FETCH a name); one made
    // by SQL PREPARE + Bind, or by DECLARE, runs its definition, judged as such.
    const pinned = def.origin === 'declare' || def.statement?.origin === 'prepare';
    const request: Omit<GateRequest, 'signal' | 'notify'> = {
      phase: 'execute',
      sql: def.text,
      statementName: def.statement?.name,
      portal: name,
      parameters: def.parameters,
      parameterFormats: def.parameterFormats,
      transactionStatus: this.status,
      names,
      portalRuns: pinned ? def : undefined,
    };
    return this.decide(request, (verdict) => {
      if (verdict.action === 'refuse') {
        this.expected.push({ kind: 'parse', refusal: verdict.refusal });
        return this.poison(serialize.parse({ name: POISON_STATEMENT, text: POISON_SQL }), verdict.refusal);
      }
      this.sendNotices(verdict.notices);
      const id = verdict.statementIds[0];
      const running = id === undefined ? undefined : startRunning(id, verdict.filters?.[0]);
      if (running) {
        running.formats = def.resultFormats;
        this.describeTo(running, def);
      }
      const runs = pinned ? undefined : def.runs;
      const effect = runs ? this.expectEffect(effectOf(runs, this.model), group) : undefined;
      const entry: Expected = { kind: 'execute', statement: running, portal: def, effect };
      this.expected.push(entry);
      return this.forward(verdict, frame.bytes, entry);
    });
  }

  private Describe(frame: Frame): ClientStep {
    const { target, name } = parseDescribeOrClose(frame.body);
    const names = this.model.view(this.group);
    if (target === 'S') {
      const s = names.statement(name);
      if (s.state === 'unknown') return this.refuseUse(unknownName('prepared statement', name));
      this.expected.push({ kind: 'describe', statement: s.state === 'known' ? s.def : undefined });
    } else {
      const p = names.portal(name);
      if (p.state === 'unknown') return this.refuseUse(unknownName('portal', name));
      this.expected.push({ kind: 'describe', portal: p.state === 'known' ? p.def : undefined });
    }
    return { kind: 'pass' };
  }

  private Close(frame: Frame): ClientStep {
    const { target, name } = parseDescribeOrClose(frame.body);
    const effect: Effect =
      target === 'S' ? { on: 'statement', op: 'drop', name } : { on: 'portal', op: 'drop', name };
    this.expected.push({ kind: 'close', effect: this.model.expect(effect, this.group) });
    return { kind: 'pass' };
  }

  private Sync(): ClientStep {
    this.expected.push({ kind: 'sync' });
    this.group++;
    return { kind: 'pass' };
  }

  /** FunctionCall names a function by OID, bypassing SQL: nothing to classify, so refused. */
  private FunctionCall(): ClientStep {
    const group = ++this.group;
    this.group++;
    const unnamed = this.model.expect({ on: 'unnamed', op: 'drop' }, group);
    this.expected.push({ kind: 'function', refusal: FUNCTION_CALL_REFUSED, unnamed });
    return this.poison(serialize.query(POISON_SQL), FUNCTION_CALL_REFUSED);
  }

  // ---- helpers -------------------------------------------------------------------------------------

  /** Ask the gate; continue at once when it answers synchronously, or when its promise settles. */
  private decide(
    request: Omit<GateRequest, 'signal' | 'notify'>,
    then: (verdict: GateVerdict) => ClientStep,
  ): ClientStep {
    const controller = { current: undefined as AbortController | undefined };
    const full: GateRequest = {
      ...request,
      // The AbortController is made on first use: only an approval wait listens to it.
      get signal() {
        controller.current ??= new AbortController();
        return controller.current.signal;
      },
      notify: (notice: Notice) => this.out.toClient(noticeMessage(notice)),
    };
    const verdict = this.gate.check(full);
    if (!(verdict instanceof Promise)) return then(verdict);
    const abort = (reason: Error) => {
      controller.current ??= new AbortController();
      controller.current.abort(reason);
    };
    this.abortDecision = abort;
    return {
      kind: 'wait',
      until: verdict.then(
        (v) => {
          this.abortDecision = undefined;
          return then(v);
        },
        (err: Error) => {
          this.abortDecision = undefined;
          throw err;
        },
      ),
    };
  }

  /** A CancelRequest for this session: abort a decision in progress (an approval wait). True if there was one. */
  cancelPendingDecision(reason = new Error('canceled by the client')): boolean {
    if (!this.abortDecision) return false;
    this.abortDecision(reason);
    return true;
  }

  private forward(verdict: GateVerdict & { action: 'forward' }, bytes: Buffer, entry: Expected): ClientStep {
    if (verdict.lsn === undefined) return { kind: 'pass' };
    return { kind: 'hold', lsn: verdict.lsn, held: { bytes, entry } };
  }

  private poison(bytes: Buffer, refusal: Refusal): ClientStep {
    return { kind: 'refuse', bytes, refusal };
  }

  /** Refuse a use of a name the gateway cannot pin down (Bind, Execute, Describe): a poison Parse. */
  private refuseUse(refusal: Refusal): ClientStep {
    this.expected.push({ kind: 'parse', refusal });
    return this.poison(serialize.parse({ name: POISON_STATEMENT, text: POISON_SQL }), refusal);
  }

  private expectEffect(effect: Effect | undefined, group: number): InFlight | undefined {
    return effect ? this.model.expect(effect, group) : undefined;
  }

  private sendNotices(notices: Notice[] | undefined): void {
    for (const n of notices ?? []) this.out.toClient(noticeMessage(n));
  }

  /**
   * A held statement's records were lost. Fail closed: it becomes a poison message with the gate's
   * refusal (58030), or passes (fail-open) when the gate says so. Returns the bytes to send.
   */
  heldFailed(held: Held, err: Error): Buffer {
    const refusal = this.gate.recordFailed(err);
    if (!refusal) return held.bytes;
    const entry = held.entry;
    const at = this.expected.indexOf(entry);
    if (entry.kind === 'query') {
      for (const e of entry.effects) if (e) this.model.settle(e, 'skipped');
      entry.effects = [];
      entry.statements = [];
      entry.refusal = refusal;
      return serialize.query(POISON_SQL);
    }
    if (entry.kind === 'execute') {
      if (entry.effect) this.model.settle(entry.effect, 'skipped');
      if (at >= 0) this.expected[at] = { kind: 'parse', refusal };
      return serialize.parse({ name: POISON_STATEMENT, text: POISON_SQL });
    }
    return held.bytes;
  }

  // ==== server → client ============================================================================

  /** Follow one server message. Returns undefined to pass it as is, or the bytes to send instead. */
  server(frame: Frame): Buffer | undefined {
    const head = this.expected[0];
    if (head?.kind === 'query' && !head.started) {
      head.started = true;
      this.model.settle(head.unnamed, 'ok');
    }
    switch (frame.type) {
      case 'D':
        return this.DataRow(frame, head);
      case 'd':
        return this.CopyData(frame, head);
      case 'T':
        return this.RowDescription(frame, head);
      case 'N':
        return this.NoticeResponse(frame, head);
      case 'n':
        return this.NoData(head);
      case 't': // ParameterDescription: a statement Describe's first answer; its RowDescription or NoData follows.
        return undefined;
      case '1':
      case '2':
      case '3':
        return this.Complete(head);
      case 'C':
      case 'I':
      case 's':
        return this.CommandComplete(frame, head);
      case 'E':
        return this.ErrorResponse(frame, head);
      case 'Z':
        return this.ReadyForQuery(frame);
      default:
        // Notifications, parameter status, COPY responses, function results: as they are.
        return undefined;
    }
  }

  /** True when the next rows can pass as counted runs: no filter looks inside, the recording is full. */
  rowsPassThrough(): boolean {
    const running = this.currentStatement(this.expected[0]);
    if (!running) return true;
    return !running.filter && recordingFull(running, this.gate);
  }

  private DataRow(frame: Frame, head: Expected | undefined): Buffer | undefined {
    const running = this.currentStatement(head);
    if (!running) return undefined;
    if (frame.count) {
      // A run of rows read by rowsPassThrough(): no filter, nothing more to record.
      running.rows += frame.count;
      running.bytes += frame.bytes.length - 5 * frame.count;
      if (this.gate.recordRows > 0) running.truncated = true;
      return undefined;
    }
    let replacement: Buffer | undefined;
    if (running.filter) {
      // The formats are the same for every row of a statement: expand them once, not per row.
      const count = frame.body.readInt16BE(0);
      if (running.rowFormats?.length !== count) running.rowFormats = expandFormats(running.formats, count);
      replacement = running.filter.dataRow(frame.body, running.rowFormats);
    }
    // Recordings hold what the client saw: the masked row when there is one.
    countRow(running, replacement ? replacement.subarray(5) : frame.body, frame.body.length, this.gate);
    return replacement;
  }

  private CopyData(frame: Frame, head: Expected | undefined): Buffer | undefined {
    const running = this.currentStatement(head);
    if (!running) return undefined;
    running.bytes += frame.body.length;
    return running.filter?.copyData?.(frame.body);
  }

  private RowDescription(frame: Frame, head: Expected | undefined): Buffer | undefined {
    if (head?.kind === 'describe') {
      this.expected.shift();
      this.described(head, decodeRowDescription(frame.body));
      return undefined;
    }
    const running = this.currentStatement(head);
    if (running && (running.filter || this.gate.recordRows > 0)) {
      const fields = decodeRowDescription(frame.body);
      // Simple protocol: RowDescription carries the real formats (binary cursors).
      if (head?.kind === 'query') running.formats = fields.map((f) => f.format);
      setColumns(running, fields);
    }
    return undefined;
  }

  private NoticeResponse(frame: Frame, head: Expected | undefined): Buffer | undefined {
    const running = this.currentStatement(head);
    const filter = running?.filter;
    return filter?.message ? rewriteFields('N', frame.body, (f) => filter.message!(f)) : undefined;
  }

  private NoData(head: Expected | undefined): Buffer | undefined {
    if (head?.kind === 'describe') this.expected.shift();
    return undefined;
  }

  /** ParseComplete, BindComplete, CloseComplete. */
  private Complete(head: Expected | undefined): Buffer | undefined {
    if (head && (head.kind === 'parse' || head.kind === 'bind' || head.kind === 'close')) {
      this.expected.shift();
      if (head.effect) this.model.settle(head.effect, 'ok');
    }
    return undefined;
  }

  /** CommandComplete, EmptyQueryResponse, PortalSuspended: one statement (or Execute) is done. */
  private CommandComplete(frame: Frame, head: Expected | undefined): Buffer | undefined {
    const tag = frame.type === 'C' ? decodeCommandComplete(frame.body).tag : undefined;
    if (head?.kind === 'query') {
      const i = head.index++;
      const running = head.statements[i];
      if (running) this.finish(running, { tag });
      const effect = head.effects[i];
      if (effect) this.model.settle(effect, 'ok', tag);
    } else if (head?.kind === 'execute') {
      this.expected.shift();
      if (head.statement) this.finish(head.statement, { tag });
      // Only statements that return no rows change the session, and they never suspend.
      if (head.effect) this.model.settle(head.effect, 'ok', tag);
    } else if (head?.kind === 'parse') {
      // An Execute of a portal that does not exist answers with an error, never this; be safe.
      this.expected.shift();
    }
    return undefined;
  }

  private ErrorResponse(frame: Frame, head: Expected | undefined): Buffer | undefined {
    const fields = decodeFields(frame.body);
    if (fields.S === 'FATAL' || fields.S === 'PANIC') this.upstreamSentFatal = true;
    // An error no message asked for (a FATAL from a server timeout or shutdown): as it is.
    if (!head) return undefined;
    this.model.error();
    const running = this.currentStatement(head);
    // A failed statement may echo a masked value (e.g. a failed cast quoting it): let the filter redact.
    const filter = running?.filter;
    const filtered = filter?.message ? rewriteFields('E', frame.body, (f) => filter.message!(f)) : undefined;
    const refusal = 'refusal' in head ? head.refusal : undefined;
    const failure = { sqlstate: fields.C, error: fields.M };
    if (head.kind === 'query') {
      const i = head.index++;
      const stmt = head.statements[i];
      if (stmt) this.finish(stmt, failure);
      const effect = head.effects[i];
      if (effect) this.model.settle(effect, 'failed');
      if (refusal) head.refusal = undefined;
    } else if (head.kind !== 'sync' && head.kind !== 'function') {
      // Extended protocol: Postgres now skips every message until Sync, so will we.
      this.expected.shift();
      if (head.kind === 'execute') {
        if (head.statement) this.finish(head.statement, failure);
        if (head.effect) this.model.settle(head.effect, 'failed');
      } else if ('effect' in head && head.effect) this.model.settle(head.effect, 'failed');
      this.skipToSync();
    }
    if (refusal) return refusalResponse(refusal);
    return filtered;
  }

  /** After an extended-protocol error Postgres ignores every message but Sync (a Query too). */
  private skipToSync(): void {
    while (this.expected.length > 0 && this.expected[0]!.kind !== 'sync') this.skip(this.expected.shift()!);
  }

  private ReadyForQuery(frame: Frame): Buffer | undefined {
    this.status = decodeReadyForQuery(frame.body);
    // Everything up to the Query/Sync/FunctionCall this answers is over (skipped after an error).
    while (this.expected.length > 0) {
      const entry = this.expected.shift()!;
      this.skip(entry);
      if (entry.kind === 'query' || entry.kind === 'sync' || entry.kind === 'function') break;
    }
    this.model.ready(this.status);
    return undefined;
  }

  /** An expected answer that will never come: the statement did not run. */
  private skip(entry: Expected): void {
    switch (entry.kind) {
      case 'query':
        if (!entry.started) {
          entry.started = true;
          this.model.settle(entry.unnamed, 'ok');
        }
        for (const s of entry.statements.slice(entry.index)) this.finish(s, { skipped: true });
        for (const e of entry.effects.slice(entry.index)) if (e) this.model.settle(e, 'skipped');
        entry.index = entry.statements.length;
        return;
      case 'function':
        this.model.settle(entry.unnamed, 'ok');
        return;
      case 'execute':
        if (entry.statement) this.finish(entry.statement, { skipped: true });
        if (entry.effect) this.model.settle(entry.effect, 'skipped');
        return;
      case 'parse':
      case 'bind':
      case 'close':
        if (entry.effect) this.model.settle(entry.effect, 'skipped');
        return;
      default:
        return;
    }
  }

  /** The session is over: whatever was still expected never ran. */
  close(): void {
    this.cancelPendingDecision(new Error('session ended'));
    for (const entry of this.expected.splice(0)) this.skip(entry);
  }

  private currentStatement(head: Expected | undefined): Running | undefined {
    if (head?.kind === 'query') return head.statements[head.index];
    if (head?.kind === 'execute') return head.statement;
    return undefined;
  }

  /** A Describe's RowDescription: remember it, and tell Executes already forwarded behind it. */
  private described(head: Expected & { kind: 'describe' }, fields: FieldDescription[]): void {
    if (head.portal) fieldsOf.set(head.portal, fields);
    else if (head.statement) fieldsOf.set(head.statement, fields);
    else return;
    for (const entry of this.expected)
      if (entry.kind === 'execute' && entry.statement) this.describeTo(entry.statement, entry.portal);
  }

  /** Give the statement its columns (record, filter) before the first DataRow, if a Describe told them. */
  private describeTo(running: Running, portal: PortalDef): void {
    if (running.described || running.rows > 0) return;
    let fields = fieldsOf.get(portal);
    if (!fields && portal.statement) {
      // A statement Describe's formats are not known yet: they are the Bind's result formats.
      fields = fieldsOf
        .get(portal.statement)
        ?.map((f, i) => ({ ...f, format: formatOf(portal.resultFormats, i) }));
    }
    if (!fields) return;
    running.described = true;
    setColumns(running, fields);
  }

  private finish(running: Running, outcome: Parameters<typeof outcomeOf>[1]): void {
    this.gate.completed(running.id, outcomeOf(running, outcome));
  }
}

/** What a Describe returned, per definition (a portal, or a statement whose formats come from each Bind). */
const fieldsOf = new WeakMap<StatementDef | PortalDef, FieldDescription[]>();

/** The statement that really runs: for an EXECUTE resolved to a prepared statement, that statement. */
function executedBy(stmt: ClassifiedStatement): ClassifiedStatement {
  const def = definitionRun(stmt);
  return def && !('hold' in def) && def.runs ? def.runs : stmt;
}

function defineStatement(def: StatementDef): Effect {
  return { on: 'statement', op: 'define', name: def.name, def };
}

/** What a statement does to the session's names or transaction when it completes. */
export function effectOf(stmt: ClassifiedStatement, model: SessionModel): Effect | undefined {
  const effect = sessionEffectOf(stmt);
  if (!effect) return undefined;
  switch (effect.kind) {
    case 'prepare':
      return {
        on: 'statement',
        op: 'define',
        name: effect.name,
        def: {
          id: model.id(),
          name: effect.name,
          origin: 'prepare',
          text: stmt.text,
          runs: preparedInner(stmt),
        },
      };
    case 'deallocate':
      return effect.name === null
        ? { on: 'statement', op: 'drop-all' }
        : { on: 'statement', op: 'drop', name: effect.name };
    case 'declare':
      return {
        on: 'portal',
        op: 'define',
        name: effect.name,
        def: {
          id: model.id(),
          name: effect.name,
          origin: 'declare',
          text: stmt.text,
          runs: stmt,
          hold: effect.hold,
          resultFormats: [],
        },
      };
    case 'close':
      return effect.name === null
        ? { on: 'portal', op: 'drop-all' }
        : { on: 'portal', op: 'drop', name: effect.name };
    case 'discard-all':
      return { on: 'all', op: 'drop-all' };
    case 'transaction':
      return { on: 'transaction', event: effect.event };
    default:
      return undefined;
  }
}

/** Re-encode an ErrorResponse/NoticeResponse after the filter redacted its fields. */
function rewriteFields(
  type: 'E' | 'N',
  body: Buffer,
  redact: (fields: Record<string, string>) => Record<string, string> | undefined,
): Buffer | undefined {
  const changed = redact(decodeFields(body));
  if (!changed) return undefined;
  const w = new MessageWriter();
  for (const [code, value] of Object.entries(changed)) w.byte(code.charCodeAt(0)).cstring(value);
  return w.byte(0).end(type);
}

function printable(type: string): string {
  return /^[\x20-\x7e]$/.test(type) ? type : `0x${type.charCodeAt(0).toString(16)}`;
}
