/**
 * The relay's I/O shell: owns both sockets of a session (the client's tunnel and the upstream),
 * frames what they send, asks the protocol core (protocol.ts) what to do with each message, and
 * applies the answer. It owns what the core must not: the outbox towards the database (with its
 * durability barriers), backpressure, timers, and the writes — one per event-loop turn and direction,
 * never one per message.
 *
 * The upstream outbox keeps client messages in order. A statement whose audit record is queued but
 * not yet durable is held there until the log's durable position reaches its LSN (write-ahead); the
 * messages after it keep being processed and queue behind it, so a pipeline of N statements waits for
 * one group commit, not N. When the commit fails, the held statement is swapped for the core's poison
 * (SQLSTATE 58030) before anything behind it leaves.
 */
import type { Duplex } from 'node:stream';
import type { SessionGate } from '../contracts/gate.js';
import { countsHeldWrites } from '../contracts/streams.js';
import { errorResponse, type NoticeFields, type TransactionStatus } from '../pgwire/backend.js';
import { type Frame, FrameReader, ProtocolViolation } from '../pgwire/frames.js';
import { type ClientStep, type Held, ProtocolCore } from './protocol.js';

export interface RelayOptions {
  maxMessageBytes: number;
  idleTimeoutMs: number;
  maxSessionMs: number;
  /** Bytes queued towards one side before we stop reading the other (backpressure). */
  highWaterMark?: number;
  /**
   * The upstream's reads, lent without a copy (transport/upstream-reads.ts): the relay answers for each
   * whether it kept a reference into it. Without it, the relay reads the upstream's 'data' events.
   */
  upstreamReads?: { lend(reader: (view: Buffer) => boolean): void };
}

/**
 * Messages queued towards the database (most behind a durability barrier) before we stop reading the
 * client: a client that pipelines faster than the audit log commits waits, instead of growing the
 * gateway's memory without bound. Reading resumes below a quarter of it, so the next part of a long
 * pipeline is read while the current one commits.
 */
const MAX_OUTBOX = 4096;

/** DataRow's type byte: rows are what a large result is made of. */
const DATA_ROW = 0x44;

/** Below this many bytes, the pieces of one upstream read are joined into one write to the client. */
const SMALL_WRITE = 16 * 1024;

/** One message on its way to the database; `held` ones wait for their records to be durable. */
interface Outgoing {
  bytes: Buffer;
  ready: boolean;
}

export class Relay {
  readonly core: ProtocolCore;
  private readonly clientReader: FrameReader;
  private readonly upstreamReader = new FrameReader(1 << 30);
  private readonly incoming: Frame[] = [];
  /** A message is waiting for the gate's slow path (approval, catalog): the rest queue behind it. */
  private waiting = false;
  private readonly outbox: Outgoing[] = [];
  /** Entries of the outbox still behind their durability barrier. */
  private held = 0;
  private flushScheduled = false;
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private sessionTimer: NodeJS.Timeout | undefined;
  private readonly highWaterMark: number;
  private clientPaused = false;
  private upstreamPaused = false;
  private ended: ((reason: string) => void)[] = [];
  /** The client's writableLength counts every write it still holds (contracts/streams.ts). */
  private readonly clientCountsHeld: boolean;

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    private readonly gate: SessionGate,
    private readonly options: RelayOptions,
    initialStatus: TransactionStatus = 'I',
  ) {
    this.clientReader = new FrameReader(options.maxMessageBytes);
    this.clientCountsHeld = countsHeldWrites(client);
    this.highWaterMark = options.highWaterMark ?? 1 << 20;
    this.core = new ProtocolCore(gate, { toClient: (bytes) => this.writeClient(bytes) }, initialStatus);
  }

  /** Start relaying. `pending` are client bytes already read past the startup packet. */
  start(pending?: Buffer, upstreamLeftover?: Buffer): void {
    this.client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    this.client.on('end', () => this.close('client disconnected'));
    this.client.on('close', () => this.close('client disconnected'));
    this.client.on('error', () => this.close('client connection error'));
    this.client.on('drain', () => this.resumeUpstream());
    if (this.options.upstreamReads)
      this.options.upstreamReads.lend((view) => this.onUpstreamData(view, true));
    else this.upstream.on('data', (chunk: Buffer) => this.onUpstreamData(chunk, false));
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
    // The client may have left while the upstream was being opened: its 'close' came before ours.
    if (this.client.destroyed) {
      this.close('client disconnected');
      return;
    }
    if (upstreamLeftover?.length) this.onUpstreamData(upstreamLeftover, false);
    if (pending?.length) this.onClientData(pending);
  }

  /** Called once, with the reason, when the session ends. */
  onEnd(listener: (reason: string) => void): void {
    this.ended.push(listener);
  }

  get transactionStatus(): TransactionStatus {
    return this.core.transactionStatus;
  }

  /** End the session from the gateway's side with a FATAL the client can read (revocation, timeouts, shutdown). */
  terminate(fields: Omit<NoticeFields, 'severity'>, reason = fields.message): void {
    if (this.closed) return;
    this.client.write(errorResponse({ ...fields, severity: 'FATAL' }));
    this.close(reason);
  }

  /** A CancelRequest for this session: abort a decision in progress (an approval wait). True if there was one. */
  cancelPendingDecision(): boolean {
    return this.core.cancelPendingDecision();
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
    this.pump();
  }

  /** Hand client messages to the core in order until one must wait; then write the outbox once. */
  private pump(): void {
    while (!this.waiting && !this.closed && this.incoming.length > 0) {
      const frame = this.incoming.shift()!;
      let step: ClientStep;
      try {
        step = this.core.client(frame);
      } catch (err) {
        this.failed(err as Error);
        return;
      }
      this.apply(frame, step);
    }
    // Behind a barrier, what is ready waits for it: the release writes both at once, so a statement
    // reaches the database in one write (Bind with its Execute), not split around the commit.
    if (this.held === 0) this.flushUpstream();
    if (!this.clientPaused && this.outbox.length > MAX_OUTBOX) {
      this.clientPaused = true;
      this.client.pause();
    } else if (this.clientPaused && !this.upstreamBackedUp()) this.resumeClient();
  }

  private apply(frame: Frame, step: ClientStep): void {
    switch (step.kind) {
      case 'pass':
        this.outbox.push({ bytes: frame.bytes, ready: true });
        return;
      case 'replace':
      case 'refuse':
        this.outbox.push({ bytes: step.bytes, ready: true });
        return;
      case 'hold':
        this.hold(step.lsn, step.held);
        return;
      case 'wait':
        // What came before goes now; what comes after waits for this decision, in order.
        this.flushUpstream();
        this.waiting = true;
        step.until.then(
          (next) => {
            this.waiting = false;
            if (this.closed) return;
            this.apply(frame, next);
            this.pump();
          },
          (err: Error) => this.failed(err),
        );
        return;
      case 'terminate':
        this.flushUpstream();
        if (!this.outbox.length) this.upstream.write(frame.bytes);
        this.close('client terminated');
        return;
    }
  }

  /** Queue a statement behind its durability barrier; it leaves when its records are durable. */
  private hold(lsn: number, held: Held): void {
    const entry: Outgoing = { bytes: held.bytes, ready: false };
    this.outbox.push(entry);
    this.held++;
    this.gate.whenDurable(lsn, (err) => {
      if (err) entry.bytes = this.core.heldFailed(held, err);
      entry.ready = true;
      this.held--;
      this.scheduleFlush();
    });
  }

  /** Durability callbacks of one group commit arrive together: write what they released once. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flushUpstream();
    });
  }

  /** Write the ready head of the outbox in one write; stop at the first message still held. */
  private flushUpstream(): void {
    if (this.closed) return;
    let n = 0;
    let size = 0;
    while (n < this.outbox.length && this.outbox[n]!.ready) size += this.outbox[n++]!.bytes.length;
    if (n === 0) return;
    const batch = this.outbox.splice(0, n);
    const data =
      n === 1
        ? batch[0]!.bytes
        : Buffer.concat(
            batch.map((o) => o.bytes),
            size,
          );
    if (!this.upstream.write(data)) {
      if (!this.clientPaused) {
        this.clientPaused = true;
        this.client.pause();
      }
    } else if (this.clientPaused) this.resumeClient();
  }

  private upstreamBackedUp(): boolean {
    return this.upstream.writableLength > this.highWaterMark;
  }

  private resumeClient(): void {
    if (
      this.clientPaused &&
      !this.closed &&
      this.incoming.length < 100 &&
      this.outbox.length < MAX_OUTBOX / 4 &&
      !this.upstreamBackedUp()
    ) {
      this.clientPaused = false;
      this.client.resume();
    }
  }

  private writeClient(bytes: Buffer): void {
    if (!this.closed) this.client.write(bytes);
  }

  private failed(err: Error): void {
    if (err instanceof ProtocolViolation) this.protocolError(err);
    else this.terminate({ code: 'XX000', message: `gateway error: ${err.message}` });
  }

  // ---- database → client -------------------------------------------------------------------

  /**
   * Relay what the database sent. A `borrowed` chunk is memory the next read reuses: every frame of it
   * is handled (written, or copied by the reader) before this returns, and the answer says whether a
   * reference into it is still held — a write the client's socket queued rather than sent at once.
   */
  private onUpstreamData(chunk: Buffer, borrowed: boolean): boolean {
    if (this.closed) return false;
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
    reader.feed(chunk, borrowed);
    for (;;) {
      let frame: Frame | undefined;
      try {
        // Rows nobody looks inside (no masking, recording full) are read as runs: counted, not parsed.
        frame = reader.next(this.core.rowsPassThrough() ? DATA_ROW : -1);
      } catch (err) {
        this.terminate({
          code: '08P01',
          message: `invalid message from the database: ${(err as Error).message}`,
        });
        return true;
      }
      if (!frame) break;
      let replacement: Buffer | undefined;
      try {
        replacement = this.core.server(frame);
      } catch (err) {
        // The core's own verdicts (out of step, an unsafe setting) say why; anything else is a bad message.
        const e = err as Error;
        this.terminate(
          e instanceof ProtocolViolation
            ? { code: e.sqlstate, message: `hoop: ${e.message}` }
            : { code: '08P01', message: `invalid message from the database: ${e.message}` },
        );
        return true;
      }
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
    if (out.length === 0) return false;
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
    // What the client's stream has not handed to the kernel yet may be a view into the chunk; a stream
    // that cannot tell (an in-memory pair) may hold it anyway.
    return !this.clientCountsHeld || this.client.writableLength > 0;
  }

  private resumeUpstream(): void {
    if (this.upstreamPaused && !this.closed) {
      this.upstreamPaused = false;
      this.upstream.resume();
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  private touch(): void {
    if (this.options.idleTimeoutMs <= 0) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => {
        // Idle means the database waits for the client, not the client for a long statement.
        if (!this.core.idle || this.waiting || this.outbox.length > 0) this.idleTimer?.refresh();
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
    if (this.core.upstreamSentFatal) {
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
    clearTimeout(this.idleTimer);
    clearTimeout(this.sessionTimer);
    this.core.close();
    // Closing the upstream socket makes Postgres roll back any open transaction.
    this.upstream.end();
    this.upstream.destroy();
    this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    for (const listener of this.ended) listener(reason);
    this.ended = [];
  }
}
