/**
 * The append-only audit log of one replica: its own hash chain in the store.
 *
 * Write-ahead without a round trip per record, as a database's WAL: `enqueue` gives the record a
 * position (an LSN, this process's own counter) at once; `whenDurable(lsn, cb)` calls back once every
 * record up to it is committed. One commit wakes every waiter it covered; a flush that already covered
 * an LSN answers at once (PostgreSQL's XLogFlush). `append` is the two as a promise.
 *
 * Cheap on the main thread: each record's members are encoded here once (the identity once per session:
 * cached by object), then handed as compact strings to the chain writer's thread, which assigns seq, time,
 * prev and hash and commits (store/chain-writer.ts). What arrives while a commit runs is the next commit.
 *
 * Fail closed: a batch that cannot be committed fails each of its waiters (the caller refuses the
 * statement, SQLSTATE 58030). A chain head moved by someone else is an alarm (see `Alarm`).
 */
import type { AuditRecord, AuditRecordInput, Checkpoint, TrustedKey } from '../../src/shared/audit.js';
import { RECORD_TYPES } from '../../src/shared/audit.js';
import { canonicalJson } from '../../src/shared/audit-chain.js';
import type { BatchResult, ChainWriterHandle } from '../store/chain-writer.js';
import { ENTRY_STRIDE, ForeignHeadError } from '../store/chain-writer.js';
import type { AuditStore, ChainHead } from '../store/types.js';
import { type OpenedChain, openChain } from './chain.js';
import { Checkpointer, type CheckpointPolicy, type SigningKey } from './checkpoint.js';

/** The record could not be made durable; the statement it was for must not run. */
export class AuditWriteError extends Error {
  constructor(cause: unknown) {
    super(`the audit log cannot be written: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'AuditWriteError';
    this.cause = cause;
  }
}

/** The chain's head in the store is not the one this gateway wrote: someone else wrote records into it. */
export interface Alarm {
  chain: string;
  /** The head this gateway wrote (or vouched for) last. */
  written: ChainHead;
  /** What the store showed instead. */
  found: ChainHead;
  /** adopt: chained onto it after an audit.alarm record; refuse: appends fail until it is resolved. */
  action: 'refuse' | 'adopt';
  message: string;
}

export interface AuditLogOptions {
  /** Sign checkpoints with this key (most callers); without it, nothing is signed. */
  signingKey?: SigningKey;
  checkpoint?: CheckpointPolicy;
  /** The replica whose chain this is (default `main`). */
  replica?: string;
  /** Keys whose checkpoints vouch for the chain's head at start (default: the signing key). */
  trustedKeys?: readonly TrustedKey[];
  /** On a head this gateway did not write: refuse appends (default) or adopt it with an audit.alarm record. */
  onForeignHead?: 'refuse' | 'adopt';
  /** Largest number of records handed to the writer in one message (default 1000). */
  maxBatch?: number;
  /** Called when something fails off the append path (a checkpoint write). */
  onError?: (err: Error) => void;
  /** Something the operator should know that does not stop the log (no head journal). */
  onWarning?: (message: string) => void;
  /** Called once per distinct foreign head found. */
  onAlarm?: (alarm: Alarm) => void;
  /** Called after each batch the writer settled (metrics: batch size, commit latency, failures). */
  onBatch?: (batch: { chain: string; records: number; ms: number; ok: boolean }) => void;
  /**
   * Records of LAZY_TYPES wait at most this long for a commit to ride along with (default 20 ms) instead
   * of forcing one of their own.
   */
  lazyMs?: number;
  /** Called after each group commit attempt (metrics, readiness): its size, the store's time, its error. */
  onCommit?: (records: number, seconds: number, error?: Error) => void;
}

/**
 * A statement's outcome is written after the fact and nobody waits on it before acting, so it does not
 * start a commit of its own: it joins the next batch (a statement's write-ahead record, a session's end),
 * or is written `lazyMs` later. In a busy session that halves the commits (and fsyncs) per statement.
 * Order is kept: LSNs are committed in order.
 */
const LAZY_TYPES = new Set<string>(['statement.result']);

export interface AuditLog {
  /** The chain this log writes, and its replica. */
  readonly chain: string;
  readonly replica: string;
  /**
   * Queue a record for the next group commit; returns its LSN (strictly increasing, this process's own)
   * at once. Validation errors (unknown type, unencodable data) and a closed log throw here.
   */
  enqueue(input: AuditRecordInput): number;
  /**
   * Call back once every record up to `lsn` is durable (err undefined), or when the batch holding `lsn`
   * failed (err set: fail the statement closed). Synchronously when that is already known. Callbacks
   * fire in LSN order; one commit wakes all its waiters at once.
   */
  whenDurable(lsn: number, callback: (err?: Error) => void): void;
  /** Every LSN up to this one is settled (committed, or failed and reported to its waiters). */
  readonly durableLsn: number;
  /** enqueue + whenDurable as a promise of the committed record. */
  append(input: AuditRecordInput): Promise<AuditRecord>;
  /** The head this log committed last (what it signs). */
  head(): ChainHead;
  /** Sign the head now (if not signed yet); exports and verification seal first. `force`: sign anyway. */
  seal(force?: boolean): Promise<Checkpoint | undefined>;
  /** Called after each committed batch (sinks use it to wake up). Returns an unsubscribe function. */
  onAppend(listener: (head: ChainHead) => void): () => void;
  /** Called with each checkpoint this log signs. */
  onCheckpoint(listener: (cp: Checkpoint) => void): () => void;
  /** The alarm raised last, if any. */
  readonly alarm: Alarm | undefined;
  /** Wait for queued appends, seal the head, stop timers and the writer. The store stays open. */
  close(): Promise<void>;
}

const KNOWN_TYPES = new Set<string>(RECORD_TYPES);

/** RFC 3339 UTC with six fraction digits. */
export function formatMicros(us: number): string {
  const iso = new Date(Math.floor(us / 1000)).toISOString(); // ...T10:40:00.123Z
  return `${iso.slice(0, -1)}${String(us % 1000).padStart(3, '0')}Z`;
}

/** A batch handed to the writer: LSNs first..last, and the appends that want their records back. */
interface Group {
  first: number;
  last: number;
  /** performance.now() when handed to the writer. */
  submitted?: number;
  entries: (string | null)[];
  appends: { lsn: number; input: AuditRecordInput; resolve: (r: AuditRecord) => void }[];
}

/** Durable-LSN waiters and failed ranges: the bookkeeping behind whenDurable. */
class DurableWatch {
  durable = 0;
  private waiters: { lsn: number; callback: (err?: Error) => void }[] = [];
  /** Recently failed LSN ranges (bounded), so a late whenDurable on a failed LSN still hears of it. */
  private readonly failed: { first: number; last: number; err: Error }[] = [];

  wait(lsn: number, callback: (err?: Error) => void): void {
    if (lsn <= this.durable) {
      callback(this.failureOf(lsn));
      return;
    }
    const w = this.waiters;
    if (w.length === 0 || w[w.length - 1]!.lsn <= lsn) w.push({ lsn, callback });
    else w.splice(this.insertionPoint(lsn), 0, { lsn, callback });
  }

  /** LSNs up to `last` are settled; those from `first` failed with `err` when given. */
  settle(first: number, last: number, err?: Error): void {
    if (err) {
      this.failed.push({ first, last, err });
      if (this.failed.length > 1024) this.failed.shift();
    }
    this.durable = last;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.lsn <= last) n++;
    if (n === 0) return;
    const due = this.waiters.splice(0, n);
    for (const { lsn, callback } of due) callback(err && lsn >= first ? err : this.failureOf(lsn));
  }

  private failureOf(lsn: number): Error | undefined {
    for (let i = this.failed.length - 1; i >= 0; i--) {
      const f = this.failed[i]!;
      if (lsn >= f.first && lsn <= f.last) return f.err;
      if (f.last < lsn) return undefined;
    }
    return undefined;
  }

  private insertionPoint(lsn: number): number {
    let lo = 0;
    let hi = this.waiters.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.waiters[mid]!.lsn <= lsn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Canonical JSON of an identity, once per identity object (a session passes the same one every time). */
const identityCache = new WeakMap<object, string>();
function encodeIdentity(identity: object): string {
  let text = identityCache.get(identity);
  if (text === undefined) {
    text = canonicalJson(identity);
    identityCache.set(identity, text);
  }
  return text;
}

const hashAt = (result: BatchResult, index: number) => result.hashes.slice(index * 64, index * 64 + 64);

/** The record handed back by append: the input's defined members and where the writer chained it. */
function recordOf(chain: string, input: AuditRecordInput, result: BatchResult, index: number): AuditRecord {
  const record: AuditRecord = {
    chain,
    seq: result.firstSeq + index,
    time: result.time,
    type: input.type,
    data: input.data,
    prev: index === 0 ? result.prev : hashAt(result, index - 1),
    hash: hashAt(result, index),
  };
  if (input.identity !== undefined) record.identity = input.identity;
  if (input.source !== undefined) record.source = input.source;
  if (input.connection !== undefined) record.connection = input.connection;
  if (input.session !== undefined) record.session = input.session;
  return record;
}

/**
 * The store keeps `connection`, `session` and the identity's subject as raw text columns beside the
 * record, and PostgreSQL text cannot hold NUL: one such record failed its whole batch — every record
 * committed with it (other people's statements refused 'the audit log cannot be written') and the
 * store's readiness. A tunnel's connection name comes from the client (`/v1/tunnel/%00`), as does an MCP
 * tool's: NUL there is written U+FFFD, in the record as in the column (the record says what was asked
 * for, as clip() does for its length). The subject is left as it is in the record's identity.
 */
const NUL = '\u0000';
const hasNul = (text: string | undefined): boolean => text?.includes(NUL) === true;
const withoutNul = (text: string): string => text.replaceAll(NUL, '\ufffd');
function storable(input: AuditRecordInput): AuditRecordInput {
  if (!hasNul(input.connection) && !hasNul(input.session)) return input;
  const copy = { ...input };
  if (copy.connection !== undefined) copy.connection = withoutNul(copy.connection);
  if (copy.session !== undefined) copy.session = withoutNul(copy.session);
  return copy;
}

/** A record's members as the writer thread takes them (ENTRY order, store/chain-writer.ts). */
function entryOf(input: AuditRecordInput): (string | null)[] {
  if (!KNOWN_TYPES.has(input.type)) throw new Error(`unknown audit record type "${input.type}"`);
  let identity: string | null = null;
  let data: string;
  try {
    if (input.identity !== undefined) identity = encodeIdentity(input.identity);
    data = canonicalJson(input.data);
  } catch (err) {
    throw new Error(`audit record cannot be encoded: ${(err as Error).message}`);
  }
  const decision = input.data.decision;
  return [
    input.type,
    input.session ?? null,
    input.connection ?? null,
    input.identity && hasNul(input.identity.subject)
      ? withoutNul(input.identity.subject)
      : (input.identity?.subject ?? null),
    typeof decision === 'string' ? decision : null,
    input.source ?? null,
    identity,
    data,
  ];
}

/** Open the replica's chain (audit/chain.ts), start its writer thread and checkpointer. */
export async function createAuditLog(store: AuditStore, options: AuditLogOptions = {}): Promise<AuditLog> {
  const replica = options.replica ?? 'main';
  const trustedKeys =
    options.trustedKeys ??
    (options.signingKey
      ? [{ key_id: options.signingKey.keyId, public_key: options.signingKey.publicKeyPem }]
      : []);
  const opened = await openChain(store, { replica, trustedKeys });
  if (opened.noJournal) options.onWarning?.(opened.noJournal);
  await store.registerChain(opened.chain, replica, new Date().toISOString());
  const log = new ChainLog(store, replica, opened, options);
  await log.start();
  return log;
}

/** One replica's log: the LSN queue, group commit through the writer thread, alarms, checkpoints. */
class ChainLog implements AuditLog {
  readonly chain: string;
  private headNow: ChainHead;
  private readonly writer: ChainWriterHandle;
  private readonly checkpointer: Checkpointer | undefined;
  private readonly watch = new DurableWatch();
  private readonly appendListeners = new Set<(head: ChainHead) => void>();
  private readonly adopt: boolean;
  private readonly onError: (err: Error) => void;
  private lastAlarm: Alarm | undefined;
  private nextLsn = 0;
  /** The batch being filled this event-loop turn. */
  private current: Group | undefined;
  private urgent = false;
  private flushScheduled = false;
  private lazyTimer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly store: AuditStore,
    readonly replica: string,
    private readonly opened: OpenedChain,
    private readonly options: AuditLogOptions,
  ) {
    this.chain = opened.chain;
    this.adopt = options.onForeignHead === 'adopt';
    this.onError = options.onError ?? (() => {});
    this.headNow = opened.foreign ? opened.head : opened.found;
    this.writer = store.openChainWriter({
      chain: this.chain,
      head: { seq: this.headNow.seq, hash: this.headNow.hash },
      journal: opened.journal,
      adopt: this.adopt,
    });
    this.checkpointer = options.signingKey
      ? new Checkpointer(
          store,
          options.signingKey,
          options.checkpoint ?? { every: 1000, intervalMs: 60_000 },
          this.chain,
          () => this.headNow,
          opened.signedThrough,
          () => this.alarmOnMovedHead(),
        )
      : undefined;
  }

  async start(): Promise<void> {
    await this.checkpointer?.start();
    if (this.opened.foreign) this.raise(this.opened.head, this.opened.found, this.opened.foreign);
  }

  get durableLsn(): number {
    return this.watch.durable;
  }

  get alarm(): Alarm | undefined {
    return this.lastAlarm;
  }

  head(): ChainHead {
    return this.headNow;
  }

  enqueue(input: AuditRecordInput): number {
    return this.enqueueStorable(storable(input));
  }

  /** enqueue of a record whose column texts are already storable (append keeps what it hands back). */
  private enqueueStorable(input: AuditRecordInput): number {
    if (this.closed) throw new AuditWriteError(new Error('the audit log is closed'));
    const entry = entryOf(input);
    const lsn = ++this.nextLsn;
    const maxEntries = (this.options.maxBatch ?? 1000) * ENTRY_STRIDE;
    if (!this.current || this.current.entries.length >= maxEntries) {
      if (this.current) this.flush();
      this.current = { first: lsn, last: lsn, entries: [], appends: [] };
    }
    this.current.last = lsn;
    for (const field of entry) this.current.entries.push(field);
    if (!LAZY_TYPES.has(input.type)) {
      this.urgent = true;
      this.scheduleFlush();
    } else if (!this.urgent && !this.lazyTimer) {
      this.lazyTimer = setTimeout(() => this.flush(), this.options.lazyMs ?? 20);
    }
    return lsn;
  }

  whenDurable(lsn: number, callback: (err?: Error) => void): void {
    this.watch.wait(lsn, callback);
  }

  append(given: AuditRecordInput): Promise<AuditRecord> {
    // The record handed back is the one written (its connection and session as stored).
    const input = storable(given);
    let lsn: number;
    try {
      lsn = this.enqueueStorable(input);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      this.current!.appends.push({ lsn, input, resolve });
      this.watch.wait(lsn, (err) => {
        if (err) reject(err);
      });
    });
  }

  seal(force?: boolean): Promise<Checkpoint | undefined> {
    return this.checkpointer ? this.checkpointer.seal(force) : Promise.resolve(undefined);
  }

  onAppend(listener: (head: ChainHead) => void): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  onCheckpoint(listener: (cp: Checkpoint) => void): () => void {
    return this.checkpointer?.onCheckpoint(listener) ?? (() => false);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.current) this.flush();
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    this.checkpointer?.stop();
    await this.checkpointer?.seal().catch((err: Error) => this.onError(err));
    await this.writer.close();
  }

  // --- group commit --------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Let every record of this event-loop turn, and of the next, join the batch.
    setImmediate(() => setImmediate(() => this.flush()));
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.lazyTimer) clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    this.urgent = false;
    const group = this.current;
    this.current = undefined;
    if (!group) return;
    this.inFlight++;
    group.submitted = performance.now();
    // Every record's hash crosses back only when an append() waits for its record.
    this.writer.submit(group.entries, group.appends.length > 0).then(
      (result) => this.committed(group, result),
      (err: Error) => this.failed(group, err),
    );
  }

  private committed(group: Group, result: BatchResult): void {
    const n = group.entries.length / ENTRY_STRIDE;
    if (result.adopted) this.raise(result.adopted.expected, result.adopted.found);
    this.headNow = { seq: result.firstSeq + n - 1, hash: result.hashes.slice(-64), time: result.time };
    for (const a of group.appends) a.resolve(recordOf(this.chain, a.input, result, a.lsn - group.first));
    this.watch.settle(group.first, group.last);
    this.settled(group);
    for (const listener of this.appendListeners) listener(this.headNow);
    // The records are committed whatever happens here; a failed checkpoint is retried by the next one.
    this.checkpointer?.afterAppend(this.headNow).catch((err: Error) => this.onError(err));
  }

  private failed(group: Group, err: Error): void {
    if (err instanceof ForeignHeadError) this.raise(err.expected, err.found);
    const failure = new AuditWriteError(err);
    this.watch.settle(group.first, group.last, failure);
    this.settled(group, failure);
  }

  private settled(group: Group, error?: Error): void {
    const records = group.entries.length / ENTRY_STRIDE;
    const ms = performance.now() - (group.submitted ?? performance.now());
    this.options.onBatch?.({ chain: this.chain, records, ms, ok: !error });
    this.options.onCommit?.(records, ms / 1000, error);
    this.inFlight--;
    if (this.quiet()) this.idle?.();
  }

  // --- alarms ----------------------------------------------------------------------------------------

  private quiet(): boolean {
    return this.inFlight === 0 && !this.current;
  }

  /** An idle chain is checked at each checkpoint: with nothing in flight, the store's head must be ours. */
  private async alarmOnMovedHead(): Promise<void> {
    if (!this.quiet()) return;
    const head = this.headNow;
    const found = await this.store.chainHead(this.chain);
    // A batch committed while the head was read makes the reading stale, not foreign: check next time.
    if (!this.quiet() || this.headNow !== head) return;
    if (found.seq !== head.seq || found.hash !== head.hash) this.raise(head, found);
  }

  /** Once per distinct foreign head: tell the operator (onAlarm) and sign it (an alarm checkpoint). */
  private raise(written: ChainHead, found: ChainHead, why?: string): void {
    const last = this.lastAlarm;
    if (last && last.found.seq === found.seq && last.found.hash === found.hash) return;
    const consequence = this.adopt
      ? '; adopted with an audit.alarm record (audit.on_foreign_head: adopt)'
      : '; appends fail until an operator resolves it (docs/audit.md, "Alarms")';
    this.lastAlarm = {
      chain: this.chain,
      written,
      found,
      action: this.adopt ? 'adopt' : 'refuse',
      message: `${why ?? new ForeignHeadError(this.chain, written, found).message}${consequence}`,
    };
    this.options.onAlarm?.(this.lastAlarm);
    this.checkpointer?.alarm(written, found).catch((err: Error) => this.onError(err));
  }
}
