/**
 * The per-connection relay: the one place that owns both sides of a session (the client's tunnel
 * and the upstream socket) and asks the gate for a decision before each statement goes through.
 *
 * Client → database: frames are processed strictly in order. Statements (Query, Parse, Execute)
 * wait for the gate (policy, approval, the durable record) before they are forwarded; everything
 * else passes as the same bytes. A refused statement is replaced by a "poison" message that makes
 * the database fail at exactly that point, and the database's error is swapped for ours: so the
 * client and the database always agree on transaction state, pipelines skip to Sync as Postgres
 * does, and no ordering of responses has to be faked.
 *
 * Database → client: frames are followed against a queue of expected responses (one entry per
 * forwarded message that gets answers) to learn each statement's outcome; bytes pass through in
 * contiguous runs unless a frame must be replaced.
 */
import type { Duplex } from 'node:stream';
import { serialize } from 'pg-protocol';
import {
  decodeCommandComplete,
  decodeDataRow,
  decodeFields,
  decodeReadyForQuery,
  decodeRowDescription,
  errorResponse,
  type FieldDescription,
  MessageWriter,
  type NoticeFields,
  noticeResponse,
  type TransactionStatus,
} from '../pgwire/backend.js';
import { type Frame, FrameReader, ProtocolViolation } from '../pgwire/frames.js';
import { parseBind, parseExecute, parseParse, parseQuery } from '../pgwire/frontend.js';
import type { GateRequest, ResultFilter, SessionGate, StatementOutcome } from './gate.js';

export interface RelayOptions {
  maxMessageBytes: number;
  idleTimeoutMs: number;
  maxSessionMs: number;
  /** Bytes queued towards one side before we stop reading the other (backpressure). */
  highWaterMark?: number;
}

/** A statement forwarded and not yet finished. */
interface Running {
  id: string;
  startedAt: number;
  rows: number;
  bytes: number;
  columns?: string[];
  recorded?: (string | null)[][];
  recordedBytes: number;
  truncated: boolean;
  /** Looks inside the results (masking); absent for the common case of plain pass-through. */
  filter?: ResultFilter;
  /** Result column formats: from RowDescription (simple) or Bind's result format codes (extended). */
  formats?: readonly number[];
  /** `formats` expanded to one code per column, for the filter (computed at the first row). */
  rowFormats?: number[];
  /** The filter was told the columns (extended protocol: from the portal's or statement's Describe). */
  described?: boolean;
}

/** A portal bound through the gateway; `fields` is what a Describe of it returned. */
interface Portal {
  sql: string;
  statementName: string;
  bind: Frame;
  resultFormats: number[];
  epoch: number;
  fields?: FieldDescription[];
}

/** What the database will answer to one forwarded message. */
type Expected =
  | { kind: 'query'; statements: Running[]; index: number; refusal?: NoticeFields }
  | {
      kind: 'parse' | 'bind' | 'describe' | 'close';
      refusal?: NoticeFields;
      learned?: string;
      /** Describe: of this portal, or of this statement (name and SQL). */
      described?: { portal?: Portal; statement?: { name: string; sql: string } };
    }
  | { kind: 'execute'; statement?: Running; portal?: Portal }
  | { kind: 'sync' }
  | { kind: 'function'; refusal?: NoticeFields };

/** DataRow's type byte: rows are what a large result is made of. */
const DATA_ROW = 0x44;

/** Below this many bytes, the pieces of one upstream read are joined into one write to the client. */
const SMALL_WRITE = 16 * 1024;

/** Text that fails to parse in every PostgreSQL version: the "poison" a refused statement becomes. */
const POISON_SQL = 'HOOP STATEMENT REFUSED BY THE GATEWAY';
/** Name of the poison Parse sent in an Execute's place: never created (it fails), so the client's own statements are untouched. */
const POISON_STATEMENT = 'hoop_refused_statement';

export class Relay {
  private readonly clientReader: FrameReader;
  private readonly upstreamReader = new FrameReader(1 << 30);
  private readonly incoming: Frame[] = [];
  private processing = false;
  private outgoing: Buffer[] = [];
  private readonly expected: Expected[] = [];
  private readonly statements = new Map<string, string>(); // prepared statement name → SQL
  private readonly portals = new Map<string, Portal>();
  /** What a Describe of a prepared statement returned (formats come from each Bind), by name. */
  private readonly statementFields = new Map<string, { sql: string; fields: FieldDescription[] }>();
  /**
   * Sync-like messages (Sync, Query, FunctionCall) forwarded, and ReadyForQuery messages seen. A
   * pipelining client's Bind may be read before the ReadyForQuery of an earlier Sync arrives: a
   * portal bound after the k-th Sync only ends at a ReadyForQuery answering a later one.
   */
  private syncsSent = 0;
  private readiesSeen = 0;
  private status: TransactionStatus = 'I';
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private sessionTimer: NodeJS.Timeout | undefined;
  private readonly highWaterMark: number;
  private clientPaused = false;
  private upstreamPaused = false;
  private ended: ((reason: string) => void)[] = [];
  /** Aborts the gate's decision in progress (an approval wait) on cancel or disconnect. */
  private deciding: { abort(reason: Error): void } | undefined;
  /** The database ended the session with a FATAL of its own, which the client has already seen. */
  private upstreamSentFatal = false;

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    private readonly gate: SessionGate,
    private readonly options: RelayOptions,
    initialStatus: TransactionStatus = 'I',
  ) {
    this.clientReader = new FrameReader(options.maxMessageBytes);
    this.status = initialStatus;
    this.highWaterMark = options.highWaterMark ?? 1 << 20;
  }

  /** Start relaying. `pending` are client bytes already read past the startup packet. */
  start(pending?: Buffer, upstreamLeftover?: Buffer): void {
    this.client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    this.client.on('end', () => this.close('client disconnected'));
    this.client.on('close', () => this.close('client disconnected'));
    this.client.on('error', () => this.close('client connection error'));
    this.client.on('drain', () => this.resumeUpstream());
    this.upstream.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    this.upstream.on('end', () => this.upstreamGone());
    this.upstream.on('close', () => this.upstreamGone());
    this.upstream.on('error', () => this.upstreamGone());
    this.upstream.on('drain', () => this.resumeClient());
    if (this.options.maxSessionMs > 0) {
      this.sessionTimer = setTimeout(
        () =>
          this.terminate({
            code: '57P01',
            message: 'terminating connection: the session reached its maximum duration',
          }),
        this.options.maxSessionMs,
      );
      this.sessionTimer.unref();
    }
    this.touch();
    if (upstreamLeftover?.length) this.onUpstreamData(upstreamLeftover);
    if (pending?.length) this.onClientData(pending);
  }

  /** Called once, with the reason, when the session ends. */
  onEnd(listener: (reason: string) => void): void {
    this.ended.push(listener);
  }

  get transactionStatus(): TransactionStatus {
    return this.status;
  }

  /** End the session from the gateway's side with a FATAL the client can read (revocation, timeouts, shutdown). */
  terminate(fields: Omit<NoticeFields, 'severity'>, reason = fields.message): void {
    if (this.closed) return;
    this.client.write(errorResponse({ ...fields, severity: 'FATAL' }));
    this.close(reason);
  }

  // ---- client → database -------------------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    this.touch();
    let frames: Frame[];
    try {
      frames = this.clientReader.push(chunk);
    } catch (err) {
      this.protocolError(err as Error);
      return;
    }
    for (const frame of frames) this.incoming.push(frame);
    if (this.incoming.length > 1000 && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
    if (!this.processing) void this.processIncoming();
  }

  /** Handle client frames in order; only statements wait (for the gate), the rest batch into one write. */
  private async processIncoming(): Promise<void> {
    this.processing = true;
    try {
      while (this.incoming.length > 0 && !this.closed) {
        const frame = this.incoming.shift()!;
        const pending = this.handleClientFrame(frame);
        if (pending) {
          this.flushUpstream();
          await pending;
        }
      }
      this.flushUpstream();
    } catch (err) {
      if (err instanceof ProtocolViolation) this.protocolError(err);
      else this.terminate({ code: 'XX000', message: `gateway error: ${(err as Error).message}` });
    } finally {
      this.processing = false;
    }
    if (this.clientPaused && !this.upstreamBackedUp()) this.resumeClient();
  }

  /** Returns a promise when the frame had to wait for the gate; otherwise it was queued for upstream. */
  private handleClientFrame(frame: Frame): Promise<void> | undefined {
    switch (frame.type) {
      case 'Q':
        return this.onQuery(frame);
      case 'P':
        return this.onParse(frame);
      case 'B':
        this.onBind(frame);
        return undefined;
      case 'E':
        return this.onExecute(frame);
      case 'D':
        this.onDescribe(frame);
        return undefined;
      case 'C':
        this.onClose(frame);
        return undefined;
      case 'S':
        this.send(frame.bytes, { kind: 'sync' });
        return undefined;
      case 'H': // Flush
      case 'd': // CopyData
      case 'c': // CopyDone
      case 'f': // CopyFail
        this.send(frame.bytes);
        return undefined;
      case 'F':
        // FunctionCall names a function by OID, bypassing SQL: nothing to classify, so refused.
        this.send(serialize.query(POISON_SQL), {
          kind: 'function',
          refusal: {
            severity: 'ERROR',
            code: '42501',
            message: 'hoop: the fast-path FunctionCall message is not allowed through the gateway',
            hint: 'Call the function from SQL (SELECT fn(...)) so policy can check it.',
          },
        });
        return undefined;
      case 'X':
        this.flushUpstream();
        this.upstream.write(frame.bytes);
        this.close('client terminated');
        return undefined;
      default:
        throw new ProtocolViolation(`unexpected message type "${printable(frame.type)}" from the client`);
    }
  }

  private async onQuery(frame: Frame): Promise<void> {
    const { sql } = parseQuery(frame.body);
    const verdict = await this.decide({ phase: 'query', sql, transactionStatus: this.status });
    if (verdict.action === 'refuse') {
      this.send(serialize.query(POISON_SQL), {
        kind: 'query',
        statements: [],
        index: 0,
        refusal: verdict.error,
      });
      return;
    }
    this.queueNotices(verdict.notices);
    const statements = verdict.statementIds.map((id, i) => startRunning(id, verdict.filters?.[i]));
    this.send(frame.bytes, { kind: 'query', statements, index: 0 });
  }

  private async onParse(frame: Frame): Promise<void> {
    const parse = parseParse(frame.body);
    const verdict = await this.decide({
      phase: 'parse',
      sql: parse.sql,
      statementName: parse.statement,
      transactionStatus: this.status,
    });
    // Postgres drops the unnamed statement at every Parse, but refuses to redefine a named one
    // (42P05): an existing named statement keeps its original text, here as there.
    if (parse.statement === '') this.statements.delete('');
    if (verdict.action === 'refuse') {
      // Same statement name: Postgres reports the syntax error before any name clash.
      this.send(serialize.parse({ name: parse.statement, text: POISON_SQL }), {
        kind: 'parse',
        refusal: verdict.error,
      });
      return;
    }
    // Learnt now (Bind/Execute may follow before ParseComplete), forgotten if Postgres fails or skips
    // this Parse: a later Parse of the name with other text is then what Postgres holds.
    let learned: string | undefined;
    if (!this.statements.has(parse.statement)) {
      this.statements.set(parse.statement, parse.sql);
      this.statementFields.delete(parse.statement);
      learned = parse.statement;
    }
    this.send(frame.bytes, { kind: 'parse', learned });
  }

  private onBind(frame: Frame): void {
    const bind = parseBind(frame.body);
    const sql = this.statements.get(bind.statement);
    if (sql !== undefined) {
      this.portals.set(bind.portal, {
        sql,
        statementName: bind.statement,
        bind: frame,
        resultFormats: bind.resultFormats,
        epoch: this.syncsSent,
      });
    } else this.portals.delete(bind.portal); // Postgres will refuse the Bind: no such statement.
    this.send(frame.bytes, { kind: 'bind' });
  }

  private async onExecute(frame: Frame): Promise<void> {
    const { portal: portalName } = parseExecute(frame.body);
    const portal = this.portals.get(portalName);
    if (!portal) {
      // A portal whose SQL we never saw (a SQL-level DECLARE or PREPARE used through the protocol,
      // or one that does not exist): nothing to check it against, so it is refused.
      this.send(serialize.parse({ name: POISON_STATEMENT, text: POISON_SQL }), {
        kind: 'parse',
        refusal: {
          severity: 'ERROR',
          code: '42501',
          message: `hoop: portal "${portalName}" was not bound through the gateway from a statement it checked`,
          hint: 'Bind portals to statements prepared with Parse, or FETCH from SQL cursors with SQL.',
          routine: 'hoop_policy_denied',
        },
      });
      return;
    }
    const bind = parseBind(portal.bind.body);
    const request: Omit<GateRequest, 'signal' | 'notify'> = {
      phase: 'execute',
      sql: portal.sql,
      statementName: portal.statementName,
      portal: portalName,
      parameters: bind.parameters,
      parameterFormats: bind.parameterFormats,
      transactionStatus: this.status,
    };
    const verdict = await this.decide(request);
    if (verdict.action === 'refuse') {
      this.send(serialize.parse({ name: POISON_STATEMENT, text: POISON_SQL }), {
        kind: 'parse',
        refusal: verdict.error,
      });
      return;
    }
    this.queueNotices(verdict.notices);
    const id = verdict.statementIds[0];
    const running = id === undefined ? undefined : startRunning(id, verdict.filters?.[0]);
    if (running) running.formats = portal.resultFormats;
    if (running?.filter) this.describeTo(running, portal);
    this.send(frame.bytes, { kind: 'execute', statement: running, portal });
  }

  /**
   * Extended protocol: the RowDescription answers Describe, before the Execute whose filter needs it.
   * Remember which portal or statement each Describe asks about, so its answer reaches that filter.
   */
  private onDescribe(frame: Frame): void {
    const target = String.fromCharCode(frame.body[0] ?? 0);
    const end = frame.body.indexOf(0, 1);
    const name = frame.body.toString('utf8', 1, end < 0 ? frame.body.length : end);
    let described: { portal?: Portal; statement?: { name: string; sql: string } } | undefined;
    if (target === 'P') {
      const portal = this.portals.get(name);
      if (portal) described = { portal };
    } else {
      const sql = this.statements.get(name);
      if (sql !== undefined) described = { statement: { name, sql } };
    }
    this.send(frame.bytes, { kind: 'describe', described });
  }

  /** A Describe's RowDescription: remember it, and tell Executes already forwarded behind it. */
  private onDescribed(head: Expected, frame: Frame): void {
    const described = 'described' in head ? head.described : undefined;
    if (!described) return;
    const fields = decodeRowDescription(frame.body);
    if (described.portal) described.portal.fields = fields;
    else if (described.statement)
      this.statementFields.set(described.statement.name, { sql: described.statement.sql, fields });
    for (const entry of this.expected)
      if (entry.kind === 'execute' && entry.statement?.filter && entry.portal)
        this.describeTo(entry.statement, entry.portal);
  }

  /** Give the statement's filter its columns, before the first DataRow, if a Describe told them. */
  private describeTo(running: Running, portal: Portal): void {
    if (running.described || running.rows > 0) return;
    let fields = portal.fields;
    if (!fields) {
      const statement = this.statementFields.get(portal.statementName);
      // A statement Describe's formats are not known yet: they are the Bind's result formats.
      if (statement && statement.sql === portal.sql)
        fields = statement.fields.map((f, i) => ({ ...f, format: formatOf(portal.resultFormats, i) }));
    }
    if (!fields) return;
    running.described = true;
    running.columns = fields.map((f) => f.name);
    running.filter?.columns?.(fields);
  }

  /** Ask the gate; while it decides, a cancel or a disconnect aborts the wait. */
  private async decide(request: Omit<GateRequest, 'signal' | 'notify'>) {
    // The AbortController is made on first use: only an approval wait listens to it, and one per
    // statement showed in profiles (≈ 2 % of the gateway's CPU under pgbench).
    let controller: AbortController | undefined;
    const signal = () => {
      controller ??= new AbortController();
      return controller;
    };
    const decision = { abort: (reason: Error) => signal().abort(reason) };
    this.deciding = decision;
    try {
      return await this.gate.check({
        ...request,
        get signal() {
          return signal().signal;
        },
        notify: (notice) => {
          if (!this.closed) this.client.write(noticeResponse(notice));
        },
      });
    } finally {
      if (this.deciding === decision) this.deciding = undefined;
    }
  }

  /** A CancelRequest for this session: abort a decision in progress. True if there was one. */
  cancelPendingDecision(): boolean {
    if (!this.deciding) return false;
    this.deciding.abort(new Error('canceled by the client'));
    return true;
  }

  private onClose(frame: Frame): void {
    const target = String.fromCharCode(frame.body[0] ?? 0);
    const end = frame.body.indexOf(0, 1);
    const name = frame.body.toString('utf8', 1, end < 0 ? frame.body.length : end);
    if (target === 'S') {
      this.statements.delete(name);
      this.statementFields.delete(name);
    } else this.portals.delete(name);
    this.send(frame.bytes, { kind: 'close' });
  }

  private send(bytes: Buffer, expectation?: Expected): void {
    this.outgoing.push(bytes);
    if (expectation) {
      this.expected.push(expectation);
      if (expectation.kind === 'sync' || expectation.kind === 'query' || expectation.kind === 'function')
        this.syncsSent++;
    }
  }

  private flushUpstream(): void {
    if (this.outgoing.length === 0 || this.closed) return;
    const data = this.outgoing.length === 1 ? this.outgoing[0]! : Buffer.concat(this.outgoing);
    this.outgoing = [];
    if (!this.upstream.write(data) && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  private upstreamBackedUp(): boolean {
    return this.upstream.writableLength > this.highWaterMark;
  }

  private resumeClient(): void {
    if (this.clientPaused && !this.closed && this.incoming.length < 100 && !this.upstreamBackedUp()) {
      this.clientPaused = false;
      this.client.resume();
    }
  }

  /** Notices from the gate (e.g. "approved by ...") reach the client ahead of the statement's answer. */
  private queueNotices(notices: NoticeFields[] | undefined): void {
    for (const n of notices ?? []) this.client.write(noticeResponse(n));
  }

  // ---- database → client -------------------------------------------------------------------

  private onUpstreamData(chunk: Buffer): void {
    if (this.closed) return;
    // Pass contiguous runs of unchanged frames as one write.
    const out: Buffer[] = [];
    let runStart: Frame | undefined;
    let runEnd = 0;
    let runLength = 0;
    const endRun = () => {
      if (runStart) out.push(Buffer.from(runStart.bytes.buffer, runStart.bytes.byteOffset, runLength));
      runStart = undefined;
      runLength = 0;
    };
    const reader = this.upstreamReader;
    reader.feed(chunk);
    for (;;) {
      let frame: Frame | undefined;
      try {
        // Rows nobody looks inside (no masking, recording full) are read as runs: counted, not parsed.
        frame = reader.next(this.rowsPassThrough() ? DATA_ROW : -1);
      } catch (err) {
        this.terminate({
          code: '08P01',
          message: `invalid message from the database: ${(err as Error).message}`,
        });
        return;
      }
      if (!frame) break;
      const replacement = this.observeBackend(frame);
      if (replacement === undefined) {
        if (runStart && frame.bytes.buffer === runStart.bytes.buffer && frame.bytes.byteOffset === runEnd) {
          runLength += frame.bytes.length;
        } else {
          endRun();
          runStart = frame;
          runLength = frame.bytes.length;
        }
        runEnd = frame.bytes.byteOffset + frame.bytes.length;
      } else {
        endRun();
        if (replacement.length > 0) out.push(replacement);
      }
    }
    endRun();
    if (out.length === 0) return;
    let ok: boolean;
    if (out.length === 1) ok = this.client.write(out[0]!);
    else {
      // Small pieces are joined into one message; large ones (a result streaming in 64 KB reads, split
      // rows completed separately) are written as they are rather than copied once more.
      let total = 0;
      for (const b of out) total += b.length;
      if (total <= SMALL_WRITE) ok = this.client.write(Buffer.concat(out, total));
      else {
        ok = true;
        for (const b of out) ok = this.client.write(b);
      }
    }
    if (!ok && !this.upstreamPaused) {
      this.upstreamPaused = true;
      this.upstream.pause();
    }
  }

  private resumeUpstream(): void {
    if (this.upstreamPaused && !this.closed) {
      this.upstreamPaused = false;
      this.upstream.resume();
    }
  }

  /** Follow one server message. Returns undefined to pass it as is, or the bytes to send instead. */
  private observeBackend(frame: Frame): Buffer | undefined {
    const head = this.expected[0];
    switch (frame.type) {
      case 'D': {
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
          if (running.rowFormats?.length !== count)
            running.rowFormats = expandFormats(running.formats, count);
          replacement = running.filter.dataRow(frame.body, running.rowFormats);
        }
        // Recordings hold what the client saw: the masked row when there is one.
        this.countRow(running, replacement ? replacement.subarray(5) : frame.body, frame.body.length);
        return replacement;
      }
      case 'd': {
        const running = this.currentStatement(head);
        if (!running) return undefined;
        running.bytes += frame.body.length;
        return running.filter?.copyData?.(frame.body);
      }
      case 'T': {
        if (head?.kind === 'describe') {
          this.expected.shift();
          this.onDescribed(head, frame);
        } else {
          const running = this.currentStatement(head);
          if (running && (running.filter || this.gate.recordRows > 0)) {
            const fields = decodeRowDescription(frame.body);
            running.columns = fields.map((f) => f.name);
            // Simple protocol: RowDescription carries the real formats (binary cursors).
            if (head?.kind === 'query') running.formats = fields.map((f) => f.format);
            running.filter?.columns?.(fields);
          }
        }
        return undefined;
      }
      case 'N': {
        const running = this.currentStatement(head);
        return running?.filter?.message ? rewriteFields('N', frame.body, running.filter) : undefined;
      }
      case 'n': // NoData
        if (head?.kind === 'describe') this.expected.shift();
        return undefined;
      case '1': // ParseComplete
      case '2': // BindComplete
      case '3': // CloseComplete
        if (head && head.kind !== 'query' && head.kind !== 'sync' && head.kind !== 'execute')
          this.expected.shift();
        return undefined;
      case 'C':
      case 'I': // EmptyQueryResponse
      case 's': {
        // PortalSuspended
        const tag = frame.type === 'C' ? decodeCommandComplete(frame.body).tag : undefined;
        if (head?.kind === 'query') {
          const running = head.statements[head.index++];
          if (running) this.finish(running, { tag });
        } else if (head?.kind === 'execute') {
          this.expected.shift();
          if (head.statement) this.finish(head.statement, { tag });
        }
        return undefined;
      }
      case 'E':
        return this.onBackendError(frame, head);
      case 'Z': {
        this.status = decodeReadyForQuery(frame.body);
        this.readiesSeen++;
        // Everything up to the Query/Sync/FunctionCall this answers is over (skipped after an error).
        while (this.expected.length > 0) {
          const entry = this.expected.shift()!;
          if (entry.kind === 'query') {
            for (const s of entry.statements.slice(entry.index)) this.finish(s, { skipped: true });
            break;
          }
          if (entry.kind === 'execute' && entry.statement) this.finish(entry.statement, { skipped: true });
          if (entry.kind === 'sync' || entry.kind === 'function') break;
        }
        if (this.status === 'I') this.dropUnnamedPortals();
        this.gate.observe?.({ type: 'ready', status: this.status }); // port to the protocol core
        return undefined;
      }
      default:
        // Notices, notifications, parameter status, COPY responses, function results: as they are.
        return undefined;
    }
  }

  private onBackendError(frame: Frame, head: Expected | undefined): Buffer | undefined {
    const fields = decodeFields(frame.body);
    if (fields.S === 'FATAL' || fields.S === 'PANIC') this.upstreamSentFatal = true;
    // A failed statement may echo a masked value (e.g. a failed cast quoting it): let the filter redact.
    const filtered = this.currentStatement(head)?.filter?.message
      ? rewriteFields('E', frame.body, this.currentStatement(head)!.filter!)
      : undefined;
    const refusal = head && 'refusal' in head ? head.refusal : undefined;
    if (head?.kind === 'query') {
      const running = head.statements[head.index++];
      if (running) this.finish(running, { sqlstate: fields.C, error: fields.M });
      if (refusal) head.refusal = undefined;
    } else if (head && head.kind !== 'sync') {
      // Extended protocol: Postgres now skips every message until Sync, so will we.
      if (head.kind === 'execute' && head.statement)
        this.finish(head.statement, { sqlstate: fields.C, error: fields.M });
      if (head.kind === 'parse' && head.learned !== undefined) this.statements.delete(head.learned);
      this.expected.shift();
      while (this.expected.length > 0 && this.expected[0]!.kind !== 'sync') {
        const skipped = this.expected.shift()!;
        if (skipped.kind === 'execute' && skipped.statement)
          this.finish(skipped.statement, { skipped: true });
        if (skipped.kind === 'parse' && skipped.learned !== undefined)
          this.statements.delete(skipped.learned);
      }
    }
    this.gate.observe?.({ type: 'error' }); // port to the protocol core
    if (refusal) return errorResponse(refusal);
    return filtered;
  }

  private currentStatement(head: Expected | undefined): Running | undefined {
    if (head?.kind === 'query') return head.statements[head.index];
    if (head?.kind === 'execute') return head.statement;
    return undefined;
  }

  /** True when the next rows can pass as counted runs: no filter looks inside, the recording is full. */
  private rowsPassThrough(): boolean {
    const running = this.currentStatement(this.expected[0]);
    if (!running) return true;
    return !running.filter && this.recordingFull(running);
  }

  private recordingFull(running: Running): boolean {
    return (
      running.recordedBytes >= this.gate.recordBytes ||
      (running.recorded?.length ?? 0) >= this.gate.recordRows
    );
  }

  private countRow(running: Running, body: Buffer, wireBytes: number): void {
    running.rows++;
    running.bytes += wireBytes;
    if (this.recordingFull(running)) {
      if (this.gate.recordRows > 0) running.truncated = true;
      return;
    }
    const values = decodeDataRow(body).map((v, i) =>
      v === null ? null : formatOf(running.formats, i) === 1 ? `\\x${v.toString('hex')}` : v.toString('utf8'),
    );
    running.recorded ??= [];
    running.recorded.push(values);
    running.recordedBytes += body.length;
  }

  private finish(running: Running, outcome: Partial<StatementOutcome>): void {
    this.gate.completed(running.id, {
      rows: running.rows,
      bytes: running.bytes,
      durationMs: Date.now() - running.startedAt,
      result:
        running.columns || running.recorded
          ? { columns: running.columns ?? [], rows: running.recorded ?? [], truncated: running.truncated }
          : undefined,
      ...outcome,
    });
  }

  private dropUnnamedPortals(): void {
    // Portals live until the end of their transaction: those bound before the Sync this
    // ReadyForQuery answers are gone; those a pipelining client bound after it are not.
    for (const [name, portal] of this.portals) if (portal.epoch < this.readiesSeen) this.portals.delete(name);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  private touch(): void {
    if (this.options.idleTimeoutMs <= 0) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => {
        // Idle means the database waits for the client, not the client for a long statement.
        if (this.expected.length > 0 || this.processing) this.idleTimer?.refresh();
        else this.terminate({ code: '57P05', message: 'terminating connection due to idle-session timeout' });
      }, this.options.idleTimeoutMs);
      this.idleTimer.unref();
    }
  }

  private protocolError(err: Error): void {
    const code = err instanceof ProtocolViolation ? err.sqlstate : '08P01';
    this.terminate({ code, message: `hoop: ${err.message}` }, `protocol violation: ${err.message}`);
  }

  private upstreamGone(): void {
    if (this.closed) return;
    // The database already told the client why (e.g. FATAL 57P01 from pg_terminate_backend): just close.
    if (this.upstreamSentFatal) {
      this.close('database closed the connection');
      return;
    }
    this.terminate(
      { code: '08006', message: 'the database closed the connection' },
      'database closed the connection',
    );
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.deciding?.abort(new Error(`session ended: ${reason}`));
    clearTimeout(this.idleTimer);
    clearTimeout(this.sessionTimer);
    for (const entry of this.expected.splice(0)) {
      if (entry.kind === 'query')
        for (const s of entry.statements.slice(entry.index)) this.finish(s, { skipped: true });
      if (entry.kind === 'execute' && entry.statement) this.finish(entry.statement, { skipped: true });
    }
    // Closing the upstream socket makes Postgres roll back any open transaction.
    this.upstream.end();
    this.upstream.destroy();
    this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    for (const listener of this.ended) listener(reason);
    this.ended = [];
  }
}

function startRunning(id: string, filter?: ResultFilter): Running {
  return { id, startedAt: Date.now(), rows: 0, bytes: 0, recordedBytes: 0, truncated: false, filter };
}

/** Format of column i: Bind's codes mean none = all text, one = all that, else one per column. */
function formatOf(formats: readonly number[] | undefined, i: number): number {
  if (!formats || formats.length === 0) return 0;
  return formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

function expandFormats(formats: readonly number[] | undefined, count: number): number[] {
  return Array.from({ length: count }, (_, i) => formatOf(formats, i));
}

/** Re-encode an ErrorResponse/NoticeResponse after the filter redacted its fields. */
function rewriteFields(type: 'E' | 'N', body: Buffer, filter: ResultFilter): Buffer | undefined {
  const changed = filter.message!(decodeFields(body));
  if (!changed) return undefined;
  const w = new MessageWriter();
  for (const [code, value] of Object.entries(changed)) w.byte(code.charCodeAt(0)).cstring(value);
  return w.byte(0).end(type);
}

function printable(type: string): string {
  return /^[\x20-\x7e]$/.test(type) ? type : `0x${type.charCodeAt(0).toString(16)}`;
}
