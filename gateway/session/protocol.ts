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
import type { GateRequest, GateVerdict, Notice, ResultFilter, SessionGate } from '../contracts/gate.js';
import type { NameView, PortalDef, StatementDef } from '../contracts/names.js';
import type { Refusal } from '../contracts/refusal.js';
import {
  dataRowColumns,
  decodeCommandComplete,
  decodeFields,
  decodeReadyForQuery,
  decodeRowDescription,
  type FieldDescription,
  MessageWriter,
  type TransactionStatus,
} from '../pgwire/backend.js';
import { type Frame, ProtocolViolation } from '../pgwire/frames.js';
import {
  BodyReader,
  parseBind,
  parseDescribeOrClose,
  parseExecute,
  parseParse,
  parseQuery,
} from '../pgwire/frontend.js';
import { definitionRun, preparedInner, resolveNames, sessionEffectOf } from '../sql/session-sql.js';
import { pathsCover } from '../sql/settings.js';
import { classifySyntax } from '../sql/syntax.js';
import { noticeMessage, refusalResponse } from './edge.js';
import { Fifo } from './fifo.js';
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
      /** COPY ... FROM STDIN statements of this Query that have not started yet (see `copyIn`). */
      copies: number;
    }
  | { kind: 'parse' | 'bind' | 'close'; refusal?: Refusal; effect?: InFlight }
  | { kind: 'describe'; statement?: StatementDef; portal?: PortalDef }
  | { kind: 'execute'; statement?: Running; portal: PortalDef; effect?: InFlight; copies: number }
  | { kind: 'sync' }
  | { kind: 'function'; refusal: Refusal; unnamed: InFlight };

/** Text that fails to parse in every PostgreSQL version: the "poison" a refused statement becomes. */
export const POISON_SQL = 'HOOP STATEMENT REFUSED BY THE GATEWAY';
/** Name of the poison Parse sent in an Execute's place: never created (it fails), so the client's own statements are untouched. */
export const POISON_STATEMENT = 'hoop_refused_statement';

/** A client message the server would discard or ignore where it stands (see `discarding`, `copyIn`): not sent. */
const DROP: ClientStep = { kind: 'replace', bytes: Buffer.alloc(0) };

/** Which forwarded messages each server answer may belong to (see `answering`). */
const RESULTS: ReadonlySet<Expected['kind']> = new Set(['query', 'execute']);
const EXECUTES: ReadonlySet<Expected['kind']> = new Set(['execute']);
const DESCRIBES: ReadonlySet<Expected['kind']> = new Set(['describe']);
const ROWS_DESCRIBED: ReadonlySet<Expected['kind']> = new Set(['query', 'execute', 'describe']);
const COMPLETES: Record<string, ReadonlySet<Expected['kind']>> = {
  '1': new Set(['parse']),
  '2': new Set(['bind']),
  '3': new Set(['close']),
};

/**
 * The settings the gateway's parser depends on, as the server reports them (ParameterStatus): why a
 * value is unsafe, or undefined. Exported for the session's start, which checks the server's first report.
 */
export function unsafeSetting(name: string, value: string): string | undefined {
  const v = value.toLowerCase();
  if (name === 'client_encoding' && v !== 'utf8')
    return `the session's client_encoding became ${value}; the gateway reads SQL only as UTF8`;
  if (name === 'standard_conforming_strings' && v !== 'on')
    return `the session's standard_conforming_strings became ${value}; the gateway reads SQL only with it on`;
  return undefined;
}

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

function portalPathChanged(name: string): Refusal {
  return {
    sqlstate: '42501',
    routine: 'hoop_policy_denied',
    message: `hoop: portal "${name}" was bound under another search_path than the session has now, so the gateway cannot tell which relations it runs on`,
    detail: 'PostgreSQL plans a portal when it is bound and keeps that plan when search_path changes.',
    hint: 'Bind the portal again after changing search_path.',
  };
}

export interface CoreOutput {
  /** Bytes for the client now (notices from the gate, ahead of the statement's answer). */
  toClient(bytes: Buffer): void;
}

export class ProtocolCore {
  readonly model = new SessionModel();
  /** Marked: entries that may start a COPY FROM STDIN (copyPending needs to look only when there are some). */
  private readonly expected = new Fifo<Expected>(
    (e) => (e.kind === 'query' || e.kind === 'execute') && e.copies > 0,
  );
  private status: TransactionStatus;
  /** Pipeline segment of the next client message: it changes after every Sync, Query and FunctionCall. */
  private group = 1;
  /** The database ended the session with a FATAL of its own, which the client has already seen. */
  upstreamSentFatal = false;
  /** Aborts the gate's decision in progress (an approval wait) on cancel or disconnect. */
  private abortDecision: ((reason: Error) => void) | undefined;
  /**
   * The server discards every message up to the next Sync: an extended-protocol message failed and no
   * Sync was forwarded after it. What the client sends meanwhile is dropped here too (it never runs
   * there), so no answer is expected for it.
   */
  private discarding = false;
  /**
   * The server is in COPY FROM STDIN: it reads only CopyData, CopyDone and CopyFail (ignoring Flush and
   * Sync, and failing the COPY on anything else), until the client's CopyDone/CopyFail or the COPY's end.
   */
  private copyIn = false;
  /** Client messages waiting to learn whether a forwarded COPY ... FROM STDIN starts (see copyPending). */
  private copyWaiters: (() => void)[] = [];
  private ended = false;
  /**
   * A WITH HOLD cursor over masked data, or a write of an identity with masking rules, ran in this
   * transaction: the cursor's query runs again at COMMIT, the write's deferred constraints there or at
   * SET CONSTRAINTS, and their errors come back as another message's. Until the transaction ends,
   * every error and notice goes through this filter.
   */
  private heldFilter: ResultFilter | undefined;
  /**
   * Notices of the gateway's own ("waiting for approval #7") that wait for the answers to what the
   * client sent before the message they are about: released once `answers` Queries/Syncs are answered.
   */
  private readonly noticesAfter: { answers: number; bytes: Buffer }[] = [];
  /** Queries, Syncs and FunctionCalls answered so far (their ReadyForQuery passed). */
  private answered = 0;

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
    // The server reads a message differently in COPY FROM STDIN and after an extended-protocol error:
    // judge each message in the state the server will read it in, or the two sides fall out of step.
    if (this.copyPending()) {
      const started = new Promise<void>((resolve) => this.copyWaiters.push(resolve));
      return { kind: 'wait', until: started.then(() => (this.ended ? DROP : this.client(frame))) };
    }
    if (this.copyIn) return this.duringCopy(frame);
    if (this.discarding && frame.type !== 'S' && frame.type !== 'X') return DROP;
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
          copies: 0,
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
      const copies = resolved.ok ? resolved.statements.filter(mayCopyIn).length : 0;
      const entry: Expected = {
        kind: 'query',
        statements,
        index: 0,
        effects,
        unnamed,
        started: false,
        copies,
      };
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
          parameterTypes: parse.parameterTypes.length > 0 ? parse.parameterTypes : undefined,
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
        searchPaths: this.gate.searchPaths?.(),
      };
      effect = this.model.expect({ on: 'portal', op: 'define', name: bind.portal, def }, group);
    } else {
      // An absent statement: Postgres refuses the Bind ("does not exist"), as it would directly. Should
      // it succeed after all (the server held a statement the model did not), the portal is one the
      // gateway never checked: the name is then absent here, and every use of it refused — never the
      // definition it had before (the unnamed portal's, above all).
      effect = this.model.expect({ on: 'portal', op: 'drop', name: bind.portal }, group);
    }
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
    // The server planned a bound portal under the search_path of its Bind and never re-plans it; the
    // gate resolves names under the paths possible now: unless they include every path the Bind may
    // have run under, what it judges may not be what runs.
    if (
      def.origin === 'bind' &&
      this.gate.searchPaths &&
      !pathsCover(this.gate.searchPaths(), def.searchPaths)
    )
      return this.refuseUse(portalPathChanged(name));
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
      parameterTypes: def.statement?.parameterTypes,
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
      // What the portal's text does to the session, an EXECUTE of a prepared statement included: it
      // does what that statement does (a protocol-prepared PREPARE, DECLARE or DEALLOCATE ALL run by
      // SQL EXECUTE from a protocol portal), as in a Query.
      const runs = pinned ? undefined : def.runs && ranBy(def.runs, names);
      const effect = runs ? this.expectEffect(effectOf(runs, this.model), group) : undefined;
      const copies = (runs ?? def.runs) && mayCopyIn(runs ?? def.runs!) ? 1 : 0;
      const entry: Expected = { kind: 'execute', statement: running, portal: def, effect, copies };
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
    this.discarding = false;
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

  /**
   * A message the server reads in COPY FROM STDIN. CopyData, CopyDone, CopyFail and Flush are what it
   * takes; it ignores Sync there, but once the COPY has failed on its own a Sync would be answered, so
   * Sync is not sent (the client's Sync after CopyDone is). Anything else would fail the COPY and be
   * thrown away by the server: a client that sends it has lost track of the protocol.
   */
  private duringCopy(frame: Frame): ClientStep {
    switch (frame.type) {
      case 'd':
      case 'H':
        return { kind: 'pass' };
      case 'c':
      case 'f':
        this.copyIn = false;
        return { kind: 'pass' };
      case 'S':
        return DROP;
      case 'X':
        return { kind: 'terminate' };
      default:
        throw new ProtocolViolation(
          `unexpected message type "${printable(frame.type)}" during COPY FROM STDIN: send CopyDone or CopyFail first`,
        );
    }
  }

  /** A forwarded COPY FROM STDIN may still start: until it does (or its statement ends), the server's state is open. */
  private copyPending(): boolean {
    // Copies only ever decrease after an entry is queued: none marked, none pending (and no scan per message).
    if (this.copyIn || this.ended || this.expected.markedCount === 0) return false;
    for (const e of this.expected)
      if ((e.kind === 'query' || e.kind === 'execute') && e.copies > 0) return true;
    return false;
  }

  private releaseCopyWaiters(): void {
    if (this.copyWaiters.length === 0 || this.copyPending()) return;
    for (const resolve of this.copyWaiters.splice(0)) resolve();
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
      notify: (notice: Notice) => this.notice(notice),
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
          // An earlier message failed meanwhile and the server now discards this one: it never runs.
          if (this.discarding || this.ended) return this.dropDecided(v);
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

  /** A decided message that will not be sent: its statements are reported as skipped. */
  private dropDecided(verdict: GateVerdict): ClientStep {
    if (verdict.action === 'forward')
      for (const id of verdict.statementIds) this.finish(startRunning(id), { skipped: true });
    return DROP;
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
    for (const n of notices ?? []) this.notice(n);
  }

  /**
   * A notice about the message being decided goes after the answers to every earlier Query, Sync and
   * FunctionCall, so a pipelining client reads them in the order it sent its messages. (Answers to
   * Parse/Bind after the last Sync are not waited for: the server sends them only with the next Sync.)
   * Rare (approvals only): counting the queue is fine here.
   */
  private notice(notice: Notice): void {
    const bytes = noticeMessage(notice);
    let pending = 0;
    for (const e of this.expected)
      if (e.kind === 'query' || e.kind === 'sync' || e.kind === 'function') pending++;
    if (pending === 0 && this.noticesAfter.length === 0) this.out.toClient(bytes);
    else this.noticesAfter.push({ answers: this.answered + pending, bytes });
  }

  /** The notices whose earlier answers are all out, to follow the ReadyForQuery just passed. */
  private releasedNotices(): Buffer[] {
    const out: Buffer[] = [];
    while (this.noticesAfter.length > 0 && this.noticesAfter[0]!.answers <= this.answered)
      out.push(this.noticesAfter.shift()!.bytes);
    return out;
  }

  /**
   * A held statement's records were lost. Fail closed: it becomes a poison message with the gate's
   * refusal (58030), or passes (fail-open) when the gate says so. Returns the bytes to send.
   */
  heldFailed(held: Held, err: Error): Buffer {
    const refusal = this.gate.recordFailed(err);
    if (!refusal) return held.bytes;
    const entry = held.entry;
    if (entry.kind === 'query') {
      for (const e of entry.effects) if (e) this.model.settle(e, 'skipped');
      entry.effects = [];
      entry.statements = [];
      entry.refusal = refusal;
      return serialize.query(POISON_SQL);
    }
    if (entry.kind === 'execute') {
      if (entry.effect) this.model.settle(entry.effect, 'skipped');
      this.expected.replace(entry, { kind: 'parse', refusal });
      return serialize.parse({ name: POISON_STATEMENT, text: POISON_SQL });
    }
    return held.bytes;
  }

  // ==== server → client ============================================================================

  /** Follow one server message. Returns undefined to pass it as is, or the bytes to send instead. */
  server(frame: Frame): Buffer | undefined {
    const out = this.answer(frame);
    // A statement that could have started a COPY FROM STDIN ended or started it: what waited goes on.
    if (this.copyWaiters.length > 0) this.releaseCopyWaiters();
    return out;
  }

  private answer(frame: Frame): Buffer | undefined {
    const head = this.expected.peek();
    if (head?.kind === 'query' && !head.started) {
      head.started = true;
      this.model.settle(head.unnamed, 'ok');
    }
    // An Execute's answer starts: its columns, if a Describe answered since it was forwarded.
    if (head?.kind === 'execute' && head.statement) this.describeTo(head.statement, head.portal);
    switch (frame.type) {
      case 'D':
        this.answering(frame, head, RESULTS);
        return this.DataRow(frame, head);
      case 'd':
        this.answering(frame, head, RESULTS);
        return this.CopyData(frame, head);
      case 'T':
        this.answering(frame, head, ROWS_DESCRIBED);
        return this.RowDescription(frame, head);
      case 'N':
        return this.NoticeResponse(frame, head);
      case 'n':
        this.answering(frame, head, DESCRIBES);
        return this.NoData(head);
      case 't': // ParameterDescription: a statement Describe's first answer; its RowDescription or NoData follows.
        this.answering(frame, head, DESCRIBES);
        return undefined;
      case '1':
      case '2':
      case '3':
        this.answering(frame, head, COMPLETES[frame.type]!);
        return this.Complete(head);
      case 'C':
      case 'I':
        this.answering(frame, head, RESULTS);
        return this.CommandComplete(frame, head);
      case 's':
        this.answering(frame, head, EXECUTES);
        return this.CommandComplete(frame, head);
      case 'E':
        return this.ErrorResponse(frame, head);
      case 'Z':
        return this.ReadyForQuery(frame);
      case 'G':
        return this.CopyInResponse(frame, head);
      case 'H':
      case 'c':
        this.answering(frame, head, RESULTS);
        return undefined;
      case 'S':
        return this.ParameterStatus(frame);
      case 'W': // CopyBothResponse: only replication connections, which the gateway never opens.
      case 'V': // FunctionCallResponse: FunctionCall is never forwarded.
        throw new ProtocolViolation(
          `the database sent "${printable(frame.type)}", which no message the gateway forwarded asks for`,
        );
      case 'A':
        return this.gate.masksNotifications ? withheldNotification(frame.body) : undefined;
      default:
        return undefined;
    }
  }

  /**
   * The answer belongs to the message at the head of what was forwarded. If it does not, the two sides
   * are out of step and nothing the model says can be trusted: the session ends (fail closed).
   */
  private answering(frame: Frame, head: Expected | undefined, kinds: ReadonlySet<Expected['kind']>): void {
    if (head && kinds.has(head.kind)) return;
    throw new ProtocolViolation(
      `the database sent "${printable(frame.type)}" while the gateway expected ${head ? `an answer to ${head.kind}` : 'nothing'}; the session is out of step and ends`,
    );
  }

  /** CopyInResponse: the server now reads COPY data. Only a forwarded COPY FROM STDIN may start one. */
  private CopyInResponse(frame: Frame, head: Expected | undefined): undefined {
    if (!head || (head.kind !== 'query' && head.kind !== 'execute') || head.copies === 0)
      this.answering(frame, undefined, RESULTS);
    else head.copies--;
    this.copyIn = true;
    this.releaseCopyWaiters();
    return undefined;
  }

  /**
   * The gateway reads SQL as UTF-8 with standard-conforming strings, as the server must: if either
   * changes under it (a function calling set_config, UPDATE pg_settings, a role default after RESET),
   * a backslash or a multibyte character could hide a quote from the parser. End the session.
   */
  private ParameterStatus(frame: Frame): undefined {
    const r = new BodyReader(frame.body);
    const unsafe = unsafeSetting(r.cstring(), r.cstring());
    if (unsafe) throw new ProtocolViolation(unsafe, '42501');
    return undefined;
  }

  /** True when the next rows can pass as counted runs: no filter looks inside, the recording is full. */
  rowsPassThrough(): boolean {
    const running = this.currentStatement(this.expected.peek());
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
      // The formats are the same for every row of a statement: expand them once, not per row. The
      // filter rewrites the row by its column lengths: they must fit the message.
      const count = dataRowColumns(frame.body);
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
    const filter = this.messageFilter(this.currentStatement(head));
    const redacted = filter?.message?.(decodeFields(frame.body));
    return redacted ? encodeFields('N', redacted) : undefined;
  }

  /** What redacts an error or notice now: a WITH HOLD cursor's filter until its transaction ends, or the statement's. */
  private messageFilter(running: Running | undefined): ResultFilter | undefined {
    return this.heldFilter ?? running?.filter;
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
    // An error no message asked for (a FATAL from a server timeout or shutdown): as it is, unless a
    // WITH HOLD cursor over masked data may have raised it.
    if (!head) {
      const redacted = this.heldFilter?.message?.(fields);
      return redacted ? encodeFields('E', redacted) : undefined;
    }
    this.model.error();
    // A COPY FROM STDIN that fails ends COPY mode: the server drops the client's later COPY messages.
    this.copyIn = false;
    const running = this.currentStatement(head);
    // A failed statement may echo a masked value (e.g. a failed cast quoting it): let the filter redact.
    // The record keeps what the client was told, never the clear message.
    const redacted = this.messageFilter(running)?.message?.(fields);
    const filtered = redacted ? encodeFields('E', redacted) : undefined;
    const refusal = 'refusal' in head ? head.refusal : undefined;
    const failure = { sqlstate: fields.C, error: (redacted ?? fields).M };
    if (head.kind === 'query') {
      const i = head.index++;
      const stmt = head.statements[i];
      if (stmt) this.finish(stmt, failure);
      const effect = head.effects[i];
      if (effect) this.model.settle(effect, 'failed');
      if (refusal) head.refusal = undefined;
      // The rest of a simple Query does not run after an error: no COPY of it will start.
      head.copies = 0;
    } else if (head.kind !== 'sync' && head.kind !== 'function') {
      // Extended protocol: Postgres now skips every message until Sync, so will we.
      this.expected.shift();
      if (head.kind === 'execute') {
        if (head.statement) this.finish(head.statement, failure);
        if (head.effect) this.model.settle(head.effect, 'failed');
      } else if ('effect' in head && head.effect) this.model.settle(head.effect, 'failed');
      this.skipToSync();
      // No Sync forwarded after the failed message: the server discards what comes until the next one.
      if (this.expected.length === 0) this.discarding = true;
    }
    if (refusal) return refusalResponse(refusal);
    return filtered;
  }

  /** After an extended-protocol error Postgres ignores every message but Sync (a Query too). */
  private skipToSync(): void {
    while (this.expected.length > 0 && this.expected.peek()!.kind !== 'sync')
      this.skip(this.expected.shift()!);
  }

  private ReadyForQuery(frame: Frame): Buffer | undefined {
    if (!this.expected.some((e) => e.kind === 'query' || e.kind === 'sync' || e.kind === 'function'))
      throw new ProtocolViolation(
        'the database sent ReadyForQuery for no Query or Sync the gateway forwarded; the session is out of step and ends',
      );
    this.status = decodeReadyForQuery(frame.body);
    this.copyIn = false;
    // Out of any transaction: a WITH HOLD cursor's query has run (or never will).
    if (this.status === 'I') this.heldFilter = undefined;
    // Everything up to the Query/Sync/FunctionCall this answers is over (skipped after an error).
    while (this.expected.length > 0) {
      const entry = this.expected.shift()!;
      const answered = entry.kind === 'query' || entry.kind === 'sync' || entry.kind === 'function';
      this.skip(entry, answered);
      if (answered) {
        this.answered++;
        break;
      }
    }
    this.model.ready(this.status);
    if (this.noticesAfter.length === 0) return undefined;
    const released = this.releasedNotices();
    return released.length > 0 ? Buffer.concat([frame.bytes, ...released]) : undefined;
  }

  /**
   * An expected answer that will never come: the statement did not run. `answered`: this is the Query
   * or FunctionCall the ReadyForQuery answers, so the server did start it; otherwise the server
   * discarded it (after an extended-protocol error) and it did not even drop the unnamed statement.
   */
  private skip(entry: Expected, answered = false): void {
    switch (entry.kind) {
      case 'query':
        if (!entry.started) {
          entry.started = true;
          this.model.settle(entry.unnamed, answered ? 'ok' : 'skipped');
        }
        for (const s of entry.statements.slice(entry.index)) this.finish(s, { skipped: true });
        for (const e of entry.effects.slice(entry.index)) if (e) this.model.settle(e, 'skipped');
        entry.index = entry.statements.length;
        return;
      case 'function':
        this.model.settle(entry.unnamed, answered ? 'ok' : 'skipped');
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
    this.ended = true;
    for (const resolve of this.copyWaiters.splice(0)) resolve();
    this.cancelPendingDecision(new Error('session ended'));
    for (const entry of this.expected.drain()) this.skip(entry);
  }

  private currentStatement(head: Expected | undefined): Running | undefined {
    if (head?.kind === 'query') return head.statements[head.index];
    if (head?.kind === 'execute') return head.statement;
    return undefined;
  }

  /**
   * A Describe's RowDescription: remember it. Executes already forwarded behind it read it when their
   * own answer starts (server()), not here: a pipeline may hold thousands of them.
   */
  private described(head: Expected & { kind: 'describe' }, fields: FieldDescription[]): void {
    if (head.portal) fieldsOf.set(head.portal, fields);
    else if (head.statement) fieldsOf.set(head.statement, fields);
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
    if (running.filter?.runsAtCommit) this.heldFilter = running.filter;
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

/** The statement a portal's text really runs, its EXECUTE resolved against the names it finds. */
function ranBy(runs: ClassifiedStatement, names: NameView): ClassifiedStatement {
  const resolved = resolveNames({ ok: true, statements: [runs] }, names).classification;
  const stmt = resolved.ok ? resolved.statements[0] : undefined;
  return stmt ? executedBy(stmt) : runs;
}

/** COPY ... FROM STDIN (or a COPY the gateway cannot tell is TO STDOUT): the server may start reading COPY data. */
function mayCopyIn(stmt: ClassifiedStatement): boolean {
  return stmt.kind === 'CopyStmt' && stmt.class !== 'copy-out';
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

/**
 * A NotificationResponse with its payload withheld, channel and sender kept: a trigger may NOTIFY any
 * row (`pg_notify('changes', row_to_json(NEW)::text)`), masked columns in clear, and nothing says which.
 */
function withheldNotification(body: Buffer): Buffer {
  const pid = body.readInt32BE(0);
  const end = body.indexOf(0, 4);
  const channel = body.toString('utf8', 4, end < 0 ? body.length : end);
  return new MessageWriter().int32(pid).cstring(channel).cstring(WITHHELD_PAYLOAD).end('A');
}

/** What a LISTENing identity with masking rules receives instead of a notification's payload. */
export const WITHHELD_PAYLOAD = 'hoop: payload withheld (this identity sees masked columns)';

/** An ErrorResponse/NoticeResponse of these fields (after a filter redacted them). */
function encodeFields(type: 'E' | 'N', fields: Record<string, string>): Buffer {
  const w = new MessageWriter();
  for (const [code, value] of Object.entries(fields)) w.byte(code.charCodeAt(0)).cstring(value);
  return w.byte(0).end(type);
}

function printable(type: string): string {
  return /^[\x20-\x7e]$/.test(type) ? type : `0x${type.charCodeAt(0).toString(16)}`;
}
