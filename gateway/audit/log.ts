/**
 * The append-only audit log. `append` resolves once the record is committed (durable), and rejects when
 * the store cannot write it: the caller then fails the statement (fail closed).
 *
 * Group commit: while one batch is being written, new appends queue; the next transaction takes all of
 * them. One fsync (SQLite) or one commit round trip (PostgreSQL) then serves many statements.
 *
 * One order across processes: the head (seq, hash) is read inside the append transaction, under the
 * store's write lock, never cached — so two gateways on one PostgreSQL store interleave batches on a
 * single chain.
 */
import { createHash } from 'node:crypto';
import type { AuditRecord, AuditRecordInput, Checkpoint } from '../../src/shared/audit.js';
import { RECORD_TYPES } from '../../src/shared/audit.js';
import { canonicalJson } from '../../src/shared/audit-chain.js';
import type { ChainHead, EncodedRecord, Store } from '../store/types.js';
import { Checkpointer, type CheckpointPolicy, type SigningKey } from './checkpoint.js';

/** The record could not be made durable; the statement it was for must not run. */
export class AuditWriteError extends Error {
  constructor(cause: unknown) {
    super(`the audit log cannot be written: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'AuditWriteError';
    this.cause = cause;
  }
}

export interface AuditLogOptions {
  /** Sign checkpoints with this key (most callers); without it, nothing is signed. */
  signingKey?: SigningKey;
  checkpoint?: CheckpointPolicy;
  /** Largest batch per transaction (default 1000). */
  maxBatch?: number;
  /** Called when something fails off the append path (a checkpoint write). */
  onError?: (err: Error) => void;
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
 * Order is kept: the queue is first in, first out, and every batch takes the queue from its head.
 */
const LAZY_TYPES = new Set<string>(['statement.result']);

export interface AuditLog {
  append(input: AuditRecordInput): Promise<AuditRecord>;
  /** Sign the current head now (if not signed yet); exports and verification seal first. */
  seal(): Promise<Checkpoint | undefined>;
  /** Called after each committed batch (sinks use it to wake up). Returns an unsubscribe function. */
  onAppend(listener: (last: AuditRecord) => void): () => void;
  /** Wait for queued appends, seal the head, stop timers. The store stays open (its owner closes it). */
  close(): Promise<void>;
}

const KNOWN_TYPES = new Set<string>(RECORD_TYPES);

/** Epoch microseconds, never going backwards within this process. */
function microClock(): () => number {
  let last = 0;
  return () => {
    const now = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    last = Math.max(last, now);
    return last;
  };
}

/** RFC 3339 UTC with six fraction digits. */
export function formatMicros(us: number): string {
  const iso = new Date(Math.floor(us / 1000)).toISOString(); // ...T10:40:00.123Z
  return `${iso.slice(0, -1)}${String(us % 1000).padStart(3, '0')}Z`;
}

/**
 * An input's members encoded once, at append (so a bad value is refused to its writer, not to the batch):
 * each is `"key":<canonical JSON>` or absent. seq, time, prev and hash are added when the batch is chained.
 */
export interface EncodedInput {
  connection?: string;
  data: string;
  identity?: string;
  session?: string;
  source?: string;
  type: string;
}

function member(key: string, value: unknown): string | undefined {
  return value === undefined ? undefined : `"${key}":${canonicalJson(value)}`;
}

export function encodeInput(input: AuditRecordInput): EncodedInput {
  return {
    connection: member('connection', input.connection),
    data: member('data', input.data)!,
    identity: member('identity', input.identity),
    session: member('session', input.session),
    source: member('source', input.source),
    type: member('type', input.type)!,
  };
}

/** The record object handed back: the input's defined members (what was encoded), seq, time and hashes. */
function recordOf(
  input: AuditRecordInput,
  seq: number,
  time: string,
  prev: string,
  hash: string,
): AuditRecord {
  const record: AuditRecord = { seq, time, type: input.type, data: input.data, prev, hash };
  if (input.identity !== undefined) record.identity = input.identity;
  if (input.source !== undefined) record.source = input.source;
  if (input.connection !== undefined) record.connection = input.connection;
  if (input.session !== undefined) record.session = input.session;
  return record;
}

/**
 * Chain one record: its content's canonical JSON is assembled from the members encoded at append, in
 * sorted key order (connection, data, identity, seq, session, source, time, type), hashed, and the stored
 * text is the same members with hash and prev in their sorted places. Each value is encoded exactly once;
 * the result is byte for byte `canonicalJson(record)` (test/unit/audit/encode.test.ts checks it).
 */
export function encodeRecord(
  input: AuditRecordInput,
  encoded: EncodedInput,
  seq: number,
  time: string,
  prev: string,
): EncodedRecord {
  const seqMember = `"seq":${seq}`;
  const timeMember = `"time":${JSON.stringify(time)}`;
  const head = [encoded.connection, encoded.data].filter(Boolean).join(',');
  const identity = encoded.identity ? `${encoded.identity},` : '';
  const tail = [seqMember, encoded.session, encoded.source, timeMember, encoded.type]
    .filter(Boolean)
    .join(',');
  const content = `{${head},${identity}${tail}}`;
  const hash = createHash('sha256').update(prev).update(content).digest('hex');
  const text = `{${head},"hash":"${hash}",${identity}"prev":"${prev}",${tail}}`;
  return { record: recordOf(input, seq, time, prev, hash), text };
}

interface Pending {
  lazy: boolean;
  input: AuditRecordInput;
  encoded: EncodedInput;
  resolve: (record: AuditRecord) => void;
  reject: (err: Error) => void;
}

export async function createAuditLog(store: Store, options: AuditLogOptions = {}): Promise<AuditLog> {
  const maxBatch = options.maxBatch ?? 1000;
  const clock = microClock();
  const listeners = new Set<(last: AuditRecord) => void>();
  const onError = options.onError ?? (() => {});
  const checkpointer = options.signingKey
    ? new Checkpointer(store, options.signingKey, options.checkpoint ?? { every: 1000, intervalMs: 60_000 })
    : undefined;
  await checkpointer?.start();

  const queue: Pending[] = [];
  let draining: Promise<void> | undefined;
  let closed = false;
  const lazyMs = options.lazyMs ?? 20;
  let lazyTimer: NodeJS.Timeout | undefined;
  /** Queued records someone waits on (write-ahead records): they make the next commit happen now. */
  let urgent = 0;
  const flushLazy = () => {
    lazyTimer = undefined;
    if (queue.length > 0) draining ??= drain(true);
  };

  /** Chain a batch onto the head read under the store's lock. */
  const chain = (head: ChainHead, batch: Pending[]): EncodedRecord[] => {
    let { seq, hash } = head;
    const time = formatMicros(clock());
    return batch.map(({ input, encoded }) => {
      const next = encodeRecord(input, encoded, ++seq, time, hash);
      hash = next.record.hash;
      return next;
    });
  };

  const drain = async (all = false): Promise<void> => {
    // Let every append of this event-loop turn join the batch: the commit is synchronous (SQLite), so
    // sessions whose messages arrived in the same I/O poll would otherwise each pay a commit of their own.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      // Lazy records left alone at the tail wait for company (or the timer), unless this is the timer.
      while (queue.length > 0 && (all || urgent > 0)) {
        const batch = queue.splice(0, maxBatch);
        for (const p of batch) if (!p.lazy) urgent--;
        await writeBatch(batch);
      }
    } finally {
      // Cleared in the same step that saw the queue empty, so a later append always starts a new drain.
      draining = undefined;
      if (queue.length > 0 && !closed) lazyTimer ??= setTimeout(flushLazy, lazyMs);
    }
  };

  const writeBatch = async (batch: Pending[]): Promise<void> => {
    let records: AuditRecord[];
    const started = performance.now();
    try {
      records = await store.appendBatch((head) => chain(head, batch));
    } catch (err) {
      const failure = new AuditWriteError(err);
      options.onCommit?.(batch.length, (performance.now() - started) / 1000, failure);
      for (const p of batch) p.reject(failure);
      return;
    }
    options.onCommit?.(batch.length, (performance.now() - started) / 1000);
    for (const [i, p] of batch.entries()) p.resolve(records[i]!);
    const last = records.at(-1)!;
    for (const listener of listeners) listener(last);
    if (checkpointer) {
      // The records are committed whatever happens here; a failed checkpoint is retried by the next one.
      await checkpointer.afterAppend(last).catch((err: Error) => onError(err));
    }
  };

  return {
    append(input) {
      if (closed) return Promise.reject(new AuditWriteError(new Error('the audit log is closed')));
      if (!KNOWN_TYPES.has(input.type))
        return Promise.reject(new Error(`unknown audit record type "${input.type}"`));
      let encoded: EncodedInput;
      try {
        encoded = encodeInput(input);
      } catch (err) {
        return Promise.reject(new Error(`audit record cannot be encoded: ${(err as Error).message}`));
      }
      const lazy = LAZY_TYPES.has(input.type);
      return new Promise<AuditRecord>((resolve, reject) => {
        queue.push({ lazy, input, encoded, resolve, reject });
        if (lazy) {
          lazyTimer ??= setTimeout(flushLazy, lazyMs);
          return;
        }
        urgent++;
        if (lazyTimer) clearTimeout(lazyTimer);
        lazyTimer = undefined;
        draining ??= drain();
      });
    },
    seal: () => (checkpointer ? checkpointer.seal() : Promise.resolve(undefined)),
    onAppend(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      if (lazyTimer) clearTimeout(lazyTimer);
      lazyTimer = undefined;
      while (draining || queue.length > 0) {
        draining ??= drain(true);
        await draining;
      }
      checkpointer?.stop();
      await checkpointer?.seal().catch((err: Error) => onError(err));
    },
  };
}
