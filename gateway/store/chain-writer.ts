/**
 * The audit chain's durable write: the main thread hands over compact, already encoded record
 * members; the writer assigns seq, time, prev and hash, and commits.
 *
 * Where: a commit that waits on a disk or a network (`power`: an fsync; PostgreSQL: a round trip) runs
 * on a worker thread, beside the main thread that relays every session's bytes. SQLite with `crash`
 * commits inline (InlineChainWriter): a few WAL page writes, cheaper than the two thread wake-ups (and
 * the wait) a hop to the thread costs each batch.
 *
 * Group commit: each submit is one transaction for everything the log gathered in an event-loop turn;
 * on the thread, batches queue on a MessagePort and the writer takes everything queued at once
 * (`receiveMessageOnPort`) into one transaction — one commit (one fsync under `power`) for all of it.
 *
 * A head it did not write: each transaction first reads the chain's head from the store and compares it
 * with the head this writer committed last. If someone else moved it (an edit of the newest records, a
 * second process on the same chain), the writer refuses to chain onto it (the batch fails with
 * `foreign`) — or, when told to adopt, writes an `audit.alarm` record naming both heads and goes on.
 *
 * The head journal: before each commit the writer notes in a small file beside the signing key
 * (never in the store) the head it writes onto and the head it is about to write (PostgreSQL: also
 * the head after the commit). After a kill -9 the next start trusts exactly those heads
 * (audit/chain.ts), so records that appeared in the store while the gateway was down are found out.
 *
 * The worker's program is `chainCommitter` and `writerLoop` below, serialised with Function.toString(): it must be
 * self-contained (no reference to anything outside its body) so that it runs from the compiled gateway
 * and from the TypeScript sources under the test runner alike.
 */
import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';

/** One record's compact input: the fields `ENTRY` names, in that order; null where absent. */
export const ENTRY = {
  /** Raw strings (also the store's filter columns). */
  type: 0,
  session: 1,
  connection: 2,
  subject: 3,
  decision: 4,
  source: 5,
  /** Canonical JSON. */
  identity: 6,
  data: 7,
} as const;
export const ENTRY_STRIDE = 8;

export interface WriterHead {
  seq: number;
  hash: string;
}

export interface ChainWriterOptions {
  backend: 'sqlite' | 'postgres';
  /** SQLite: the database file; PostgreSQL: the connection URL. */
  target: string;
  /** SQLite: PRAGMAs for the writer's connection. */
  pragmas?: string[];
  durability: 'crash' | 'power';
  chain: string;
  /** The head this writer chains onto: the one the gateway committed (or vouched for) last. */
  head: WriterHead;
  /** The head journal's path (none: no journal). */
  journal?: string;
  /** Adopt a head someone else wrote (with an audit.alarm record) instead of refusing to write. */
  adopt: boolean;
}

/** A committed batch: its records are seq firstSeq … firstSeq + n - 1, all with one time. */
export interface BatchResult {
  firstSeq: number;
  time: string;
  /** The hash before the first record. */
  prev: string;
  /**
   * Each record's hash, 64 hex digits each, concatenated (one string crosses threads cheaply) — or,
   * when the batch was submitted without `everyHash`, only the last one's.
   */
  hashes: string;
  /** Set when the writer adopted a head it did not write (an audit.alarm record leads the batch). */
  adopted?: { expected: WriterHead; found: WriterHead };
}

/** The chain's head in the store is not the one this writer committed: nothing was written. */
export class ForeignHeadError extends Error {
  constructor(
    readonly chain: string,
    readonly expected: WriterHead,
    readonly found: WriterHead,
  ) {
    super(
      `the head of audit chain ${chain} in the store is seq ${found.seq} (hash ${found.hash.slice(0, 12)}…), but this gateway wrote seq ${expected.seq} (hash ${expected.hash.slice(0, 12)}…) last: refusing to chain onto records it did not write`,
    );
    this.name = 'ForeignHeadError';
  }
}

type Reply =
  | { id: number; ok: true; result: BatchResult }
  | {
      id: number;
      ok: false;
      error: string;
      foreign?: { expected: WriterHead; found: WriterHead };
      /** SQLite said another connection holds the write lock: nothing was written, try again. */
      busy?: boolean;
    };

/** Batches as the committer takes them: an id to answer, ENTRY_STRIDE fields per record. */
type Group = { id: number; entries: (string | null)[]; everyHash?: boolean };

interface Committer {
  /** Chain and commit the groups in one transaction; one reply per group, in order. */
  commit(groups: Group[]): Reply[] | Promise<Reply[]>;
  close(): void | Promise<void>;
}

interface CommitterData extends Omit<ChainWriterOptions, 'head'> {
  head: WriterHead;
  modulePath: string;
}

interface WorkerData extends CommitterData {
  port: MessagePort;
}

/**
 * Chaining and committing batches: used on the writer thread, and inline on the main thread where
 * a commit costs no more than the hop to a thread would (SQLite, durability crash). Self-contained:
 * see the module comment.
 */
function chainCommitter(req: NodeRequire, data: CommitterData): Committer {
  const { createHash } = req('node:crypto') as typeof import('node:crypto');
  const fs = req('node:fs') as typeof import('node:fs');
  const STRIDE = 8;
  const ZERO = '0'.repeat(64);
  const chain = data.chain;
  const chainMember = `"chain":${JSON.stringify(chain)}`;
  let head: WriterHead = data.head;

  // Epoch microseconds, never going backwards within this process.
  let lastMicros = 0;
  const timeNow = (): string => {
    const now = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    lastMicros = Math.max(lastMicros, now);
    const iso = new Date(Math.floor(lastMicros / 1000)).toISOString();
    return `${iso.slice(0, -1)}${String(lastMicros % 1000).padStart(3, '0')}Z`;
  };

  // --- the head journal: a fixed-size file rewritten in place --------------------------------------
  const journalFd = data.journal
    ? fs.openSync(data.journal, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600)
    : -1;
  const journal = (state: Record<string, unknown>, sync: boolean) => {
    if (journalFd < 0) return;
    const buffer = Buffer.alloc(512, 0x20);
    buffer.write(JSON.stringify({ chain, ...state }));
    buffer[511] = 0x0a;
    fs.writeSync(journalFd, buffer, 0, 512, 0);
    if (sync) fs.fdatasyncSync(journalFd);
  };

  // --- building records ------------------------------------------------------------------------
  interface Built {
    rows: unknown[][];
    hashes: string[];
    firstSeq: number;
    time: string;
    prev: string;
    next: WriterHead;
    /** Sessions this writer has not noted yet: their first seq here, and the last if they ended here. */
    opened: Map<string, { first: number; last: number | null }>;
    /** Sessions noted before that ended in this batch: their last seq. */
    ended: Map<string, number>;
  }
  // Sessions already in audit_sessions (bounded: forgetting one only costs an insert that is ignored).
  const noted = new Set<string>();
  const note = (built: Built) => {
    if (noted.size > 100_000) noted.clear();
    for (const session of built.opened.keys()) noted.add(session);
  };
  const member = (key: string, raw: string | null) =>
    raw === null ? '' : `,"${key}":${JSON.stringify(raw)}`;
  /** Chain the entries onto `from`: canonical text with members in sorted key order (docs/audit.md). */
  const build = (groups: (string | null)[][], from: WriterHead): Built => {
    const time = timeNow();
    const timeMember = `,"time":"${time}"`;
    const rows: unknown[][] = [];
    const hashes: string[] = [];
    const opened = new Map<string, { first: number; last: number | null }>();
    const ended = new Map<string, number>();
    let seq = from.seq;
    let prev = from.hash;
    for (const entries of groups) {
      for (let i = 0; i < entries.length; i += STRIDE) {
        const type = entries[i]!;
        const session = entries[i + 1] ?? null;
        const connection = entries[i + 2] ?? null;
        const identity = entries[i + 6];
        seq++;
        const front = `{${chainMember}${member('connection', connection)},"data":${entries[i + 7]}`;
        const ident = identity === null || identity === undefined ? '' : `,"identity":${identity}`;
        const back = `,"seq":${seq}${member('session', session)}${member('source', entries[i + 5] ?? null)}${timeMember},"type":${JSON.stringify(type)}}`;
        const hash = createHash('sha256').update(prev).update(`${front}${ident}${back}`).digest('hex');
        const text = `${front},"hash":"${hash}"${ident},"prev":"${prev}"${back}`;
        rows.push([
          seq,
          time,
          type,
          session,
          connection,
          entries[i + 3] ?? null,
          entries[i + 4] ?? null,
          hash,
          text,
        ]);
        hashes.push(hash);
        prev = hash;
        if (session !== null) {
          if (!noted.has(session) && !opened.has(session)) opened.set(session, { first: seq, last: null });
          if (type === 'session.ended') {
            const fresh = opened.get(session);
            if (fresh) fresh.last = seq;
            else ended.set(session, seq);
          }
        }
      }
    }
    return {
      rows,
      hashes,
      firstSeq: from.seq + 1,
      time,
      prev: from.hash,
      next: { seq, hash: prev },
      opened,
      ended,
    };
  };
  const alarmEntry = (expected: WriterHead, found: WriterHead): (string | null)[] => [
    'audit.alarm',
    null,
    null,
    null,
    null,
    null,
    null,
    JSON.stringify({
      found: { hash: found.hash, seq: found.seq },
      reason: 'foreign_head',
      written: { hash: expected.hash, seq: expected.seq },
    }),
  ];
  const sameHead = (a: WriterHead, b: WriterHead) => a.seq === b.seq && a.hash === b.hash;
  const errorOf = (err: unknown) => String((err as Error)?.message ?? err);

  // --- the backends ------------------------------------------------------------------------------

  const replies = (groups: Group[], built: Built, adopted?: { expected: WriterHead; found: WriterHead }) => {
    const out: Reply[] = [];
    let offset = adopted ? 1 : 0;
    for (const g of groups) {
      const n = g.entries.length / STRIDE;
      const hashes = g.everyHash
        ? built.hashes.slice(offset, offset + n).join('')
        : built.hashes[offset + n - 1]!;
      const prev = offset === 0 ? built.prev : built.hashes[offset - 1]!;
      out.push({
        id: g.id,
        ok: true,
        result: {
          firstSeq: built.firstSeq + offset,
          time: built.time,
          prev,
          hashes,
          adopted: offset === (adopted ? 1 : 0) ? adopted : undefined,
        },
      });
      offset += n;
    }
    return out;
  };
  const failAll = (
    groups: Group[],
    error: string,
    why: { foreign?: { expected: WriterHead; found: WriterHead }; busy?: boolean } = {},
  ): Reply[] => groups.map((g) => ({ id: g.id, ok: false, error, ...why }));

  /** SQLite: one transaction on a connection of its own (BEGIN IMMEDIATE: the write lock). */
  const sqliteBackend = (): Committer => {
    const Database = req(data.modulePath);
    const db = new Database(data.target);
    for (const pragma of data.pragmas ?? []) db.exec(pragma);
    const headQuery = db.prepare(
      'SELECT seq, hash FROM chain_records WHERE chain = ? ORDER BY seq DESC LIMIT 1',
    );
    // (An alarm checkpoint names the head this writer wrote, not one the store holds: never an anchor.)
    const anchorQuery = db.prepare(
      `SELECT seq, hash FROM chain_checkpoints WHERE chain = ? AND checkpoint NOT LIKE '%"alarm":{%' ORDER BY seq DESC, id DESC LIMIT 1`,
    );
    // Rows go in up to ROWS at a time: one statement (one call into SQLite) per chunk, not per record.
    const ROWS = 32;
    const inserts = new Map<number, { run(...params: unknown[]): unknown }>();
    const insertOf = (n: number) => {
      let stmt = inserts.get(n);
      if (!stmt) {
        const values = Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
        stmt = db.prepare(
          `INSERT INTO chain_records (chain, seq, time, type, session, connection, subject, decision, hash, record) VALUES ${values}`,
        );
        inserts.set(n, stmt!);
      }
      return stmt!;
    };
    const insertRows = (rows: unknown[][]) => {
      for (let at = 0; at < rows.length; at += ROWS) {
        const chunk = rows.slice(at, at + ROWS);
        const params: unknown[] = [];
        for (const row of chunk) params.push(chain, ...row);
        insertOf(chunk.length).run(...params);
      }
    };
    const openSession = db.prepare(
      'INSERT INTO audit_sessions (session, chain, first_seq, last_seq) VALUES (?, ?, ?, ?) ON CONFLICT (session) DO NOTHING',
    );
    const endSession = db.prepare('UPDATE audit_sessions SET last_seq = ? WHERE session = ? AND chain = ?');
    const readHead = (): WriterHead => {
      const row = headQuery.get(chain) ?? anchorQuery.get(chain);
      return row ? { seq: Number(row.seq), hash: String(row.hash) } : { seq: 0, hash: ZERO };
    };
    const commit = (groups: Group[]): Reply[] => {
      try {
        // Another connection may hold the write lock (busy_timeout waits, then this throws): the batch fails.
        db.exec('BEGIN IMMEDIATE');
        const found = readHead();
        let adopted: { expected: WriterHead; found: WriterHead } | undefined;
        if (!sameHead(found, head)) {
          if (!data.adopt) {
            db.exec('ROLLBACK');
            return failAll(groups, 'foreign head', { foreign: { expected: head, found } });
          }
          adopted = { expected: head, found };
        }
        const lead = adopted ? [alarmEntry(head, found)] : [];
        const built = build([...lead, ...groups.map((g) => g.entries)], found);
        insertRows(built.rows);
        for (const [session, at] of built.opened) openSession.run(session, chain, at.first, at.last);
        for (const [session, last] of built.ended) endSession.run(last, session, chain);
        journal({ seq: found.seq, hash: found.hash, next: built.next }, data.durability === 'power');
        db.exec('COMMIT');
        // The journal already names this head (as `next`): a start after a kill -9 trusts it when the
        // store shows it, and the previous one when the commit did not happen; no second write needed.
        head = built.next;
        note(built);
        return replies(groups, built, adopted);
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        return failAll(groups, errorOf(err), { busy: (err as { code?: string }).code === 'SQLITE_BUSY' });
      }
    };
    return { commit, close: () => db.close() };
  };

  /** PostgreSQL: one statement per batch on a connection of its own, reconnecting after a failure. */
  const postgresBackend = (): Committer => {
    const pg = req(data.modulePath);
    // One connection of its own; a new one after the server went away (the failed batches were refused).
    let client: import('pg').Client | undefined;
    let broken = false;
    const connect = async () => {
      if (client && !broken) return client;
      await client?.end().catch(() => undefined);
      broken = false;
      const fresh: import('pg').Client = new pg.Client({
        connectionString: data.target,
        options: data.durability === 'power' ? undefined : '-c synchronous_commit=off',
        application_name: `hoop-gateway audit writer (${chain})`,
      });
      fresh.on('error', () => {
        broken = true;
      });
      client = fresh;
      try {
        await fresh.connect();
      } catch (err) {
        broken = true;
        throw err;
      }
      return fresh;
    };
    // One statement per batch, its own transaction: the rows go in only if the head is still the one
    // this writer wrote last (after a purge of every record, the chain's newest checkpoint is its head).
    // The sessions it opens or ends are noted in the same statement, only when the rows went in.
    const INSERT = `WITH head AS (SELECT seq, hash FROM chain_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1),
      anchor AS (SELECT seq, hash FROM chain_checkpoints WHERE chain = $1 AND checkpoint NOT LIKE '%"alarm":{%' ORDER BY seq DESC, id DESC LIMIT 1),
      ins AS (
        INSERT INTO chain_records (chain, seq, time, type, session, connection, subject, decision, hash, record)
        SELECT $1, u.* FROM unnest($4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
          $10::text[], $11::text[], $12::text[]) AS u
        WHERE COALESCE((SELECT seq FROM head), (SELECT seq FROM anchor), 0) = $2
          AND COALESCE((SELECT hash FROM head), (SELECT hash FROM anchor), '${ZERO}') = $3
        RETURNING 1),
      opened AS (
        INSERT INTO audit_sessions (session, chain, first_seq, last_seq)
        SELECT o.s, $1, o.f, o.l FROM unnest($13::text[], $14::bigint[], $15::bigint[]) AS o(s, f, l)
        WHERE EXISTS (SELECT 1 FROM ins)
        ON CONFLICT (session) DO NOTHING),
      closed AS (
        UPDATE audit_sessions a SET last_seq = e.l FROM unnest($16::text[], $17::bigint[]) AS e(s, l)
        WHERE a.session = e.s AND a.chain = $1 AND EXISTS (SELECT 1 FROM ins))
      SELECT count(*) AS n FROM ins`;
    const HEAD = `SELECT seq, hash FROM chain_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1`;
    const ANCHOR = `SELECT seq, hash FROM chain_checkpoints WHERE chain = $1 AND checkpoint NOT LIKE '%"alarm":{%' ORDER BY seq DESC, id DESC LIMIT 1`;
    const readHead = async (): Promise<WriterHead> => {
      const db = await connect();
      const rows = (await db.query(HEAD, [chain])).rows;
      const row = rows[0] ?? (await db.query(ANCHOR, [chain])).rows[0];
      return row ? { seq: Number(row.seq), hash: String(row.hash) } : { seq: 0, hash: ZERO };
    };
    const insertBuilt = async (built: Built, onto: WriterHead): Promise<boolean> => {
      const columns = Array.from({ length: 9 }, (_, c) => built.rows.map((r) => r[c]));
      journal({ seq: onto.seq, hash: onto.hash, next: built.next }, data.durability === 'power');
      const opened = [...built.opened];
      const ended = [...built.ended];
      const sessions = [
        opened.map(([s]) => s),
        opened.map(([, at]) => at.first),
        opened.map(([, at]) => at.last),
        ended.map(([s]) => s),
        ended.map(([, last]) => last),
      ];
      const db = await connect();
      try {
        const result = await db.query(INSERT, [chain, onto.seq, onto.hash, ...columns, ...sessions]);
        return Number(result.rows[0]?.n) === built.rows.length;
      } catch (err) {
        if ((err as { code?: string }).code === '23505') return false; // someone else wrote that seq
        broken = true; // unknown state: the next batch starts on a fresh connection
        throw err;
      }
    };
    const commit = async (groups: Group[]): Promise<Reply[]> => {
      try {
        const entries = groups.map((g) => g.entries);
        let built = build(entries, head);
        if (await insertBuilt(built, head)) {
          head = built.next;
          note(built);
          journal({ seq: head.seq, hash: head.hash }, false);
          return replies(groups, built);
        }
        const found = await readHead();
        if (!data.adopt) return failAll(groups, 'foreign head', { foreign: { expected: head, found } });
        const adopted = { expected: head, found };
        built = build([alarmEntry(head, found), ...entries], found);
        if (!(await insertBuilt(built, found)))
          throw new Error(`audit chain ${chain} keeps moving under this gateway`);
        head = built.next;
        note(built);
        journal({ seq: head.seq, hash: head.hash }, false);
        return replies(groups, built, adopted);
      } catch (err) {
        return failAll(groups, errorOf(err));
      }
    };
    const close = async () => {
      await client?.end().catch(() => undefined);
    };
    return { commit, close };
  };
  const backend = data.backend === 'sqlite' ? sqliteBackend() : postgresBackend();
  return {
    commit: backend.commit,
    close: async () => {
      await backend.close();
      if (journalFd >= 0) fs.closeSync(journalFd);
    },
  };
}

/** The writer thread's program: take everything queued, one transaction, answer each batch. */
function writerLoop(
  committer: Committer,
  port: MessagePort,
  receiveMessageOnPort: typeof import('node:worker_threads').receiveMessageOnPort,
): void {
  const errorOf = (err: unknown) => String((err as Error)?.message ?? err);
  const failAll = (groups: Group[], error: string): Reply[] =>
    groups.map((g) => ({ id: g.id, ok: false, error }));
  const queue: Group[] = [];
  let busy = false;
  let closing = false;
  const drain = async () => {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) accept(m.message);
        if (queue.length === 0) break;
        const groups = queue.splice(0, queue.length);
        let answers: Reply[];
        try {
          answers = await committer.commit(groups);
        } catch (err) {
          answers = failAll(groups, errorOf(err)); // never let one batch's failure end the thread
        }
        port.postMessage(answers);
      }
      if (closing) {
        await committer.close();
        port.postMessage({ closed: true });
        port.close();
      }
    } finally {
      busy = false;
    }
  };
  const accept = (msg: {
    id?: number;
    entries?: (string | null)[];
    everyHash?: boolean;
    close?: boolean;
  }) => {
    if (msg.close) closing = true;
    else queue.push({ id: msg.id!, entries: msg.entries!, everyHash: msg.everyHash });
  };
  port.on('message', (msg) => {
    accept(msg);
    void drain();
  });
}

/** Where a chain's batches are committed: on a writer thread (ChainWriter) or inline (InlineChainWriter). */
export interface ChainWriterHandle {
  /**
   * Commit these entries (ENTRY_STRIDE fields each) after every batch submitted before. The result
   * carries every record's hash with `everyHash`, else the last one's only.
   */
  submit(entries: (string | null)[], everyHash?: boolean): Promise<BatchResult>;
  /** Commit what was submitted, close the writer's connection. */
  close(): Promise<void>;
}

/**
 * SQLite with durability `crash` commits inline, on the main thread: a commit there is a few page
 * writes into the WAL (no fsync), cheaper than the two thread wake-ups a hop to the writer thread costs
 * every statement. `power` (an fsync per commit) and PostgreSQL (a round trip) would stall the event
 * loop: they keep the writer thread.
 */
export function openChainWriter(options: ChainWriterOptions): ChainWriterHandle {
  const inline = options.backend === 'sqlite' && options.durability === 'crash';
  return inline ? new InlineChainWriter(options) : new ChainWriter(options);
}

interface Waiter {
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
}

function settleReply(chain: string, reply: Reply, waiter: Waiter): void {
  if (reply.ok) waiter.resolve(reply.result);
  else if (reply.foreign)
    waiter.reject(new ForeignHeadError(chain, reply.foreign.expected, reply.foreign.found));
  else waiter.reject(new Error(reply.error));
}

/** How long an inline commit waits for another connection's write lock: the thread's busy_timeout. */
const INLINE_BUSY_MS = 5000;

/**
 * Commits on the calling thread, synchronously: `submit` returns a promise already settled. SQLite's
 * own busy wait would block the event loop (and with it the connection that holds the lock, when it is
 * this process's store), so the connection does not wait (busy_timeout 0): a batch that finds the lock
 * taken is tried again on a timer, with everything submitted meanwhile behind it, until INLINE_BUSY_MS.
 */
export class InlineChainWriter implements ChainWriterHandle {
  private readonly committer: Committer;
  private pending: { group: Group; waiter: Waiter; since: number }[] = [];
  private retry: NodeJS.Timeout | undefined;
  private retryDelay = 1;
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: ChainWriterOptions) {
    const require = createRequire(import.meta.url);
    const pragmas = (options.pragmas ?? []).filter((p) => !/busy_timeout/i.test(p));
    pragmas.push('PRAGMA busy_timeout = 0');
    this.committer = chainCommitter(require, { ...options, pragmas, modulePath: require.resolve('libsql') });
  }

  submit(entries: (string | null)[], everyHash = true): Promise<BatchResult> {
    if (this.closed) return Promise.reject(new Error('the audit writer is closed'));
    return new Promise((resolve, reject) => {
      const group = { id: this.nextId++, entries, everyHash };
      this.pending.push({ group, waiter: { resolve, reject }, since: performance.now() });
      if (!this.retry) this.commitPending();
    });
  }

  private commitPending(): void {
    this.retry = undefined;
    const batch = this.pending;
    this.pending = [];
    const replies = this.committer.commit(batch.map((b) => b.group)) as Reply[];
    const busy = replies.some((r) => !r.ok && r.busy);
    if (busy && !this.closed && performance.now() - batch[0]!.since < INLINE_BUSY_MS) {
      this.pending = batch;
      this.retry = setTimeout(() => this.commitPending(), this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, 50);
      return;
    }
    this.retryDelay = 1;
    for (let i = 0; i < replies.length; i++) settleReply(this.options.chain, replies[i]!, batch[i]!.waiter);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retry) {
      clearTimeout(this.retry);
      this.commitPending();
    }
    await this.committer.close();
  }
}

/** The main thread's handle on the writer thread. */
export class ChainWriter implements ChainWriterHandle {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 1;
  private failed: Error | undefined;
  private closed: Promise<void> | undefined;

  constructor(private readonly options: ChainWriterOptions) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const modulePath = createRequire(import.meta.url).resolve(options.backend === 'sqlite' ? 'libsql' : 'pg');
    const workerData: WorkerData = { ...options, modulePath, port: port2 };
    const source = `const wt = require('node:worker_threads');\n(${writerLoop.toString()})((${chainCommitter.toString()})(require, wt.workerData), wt.workerData.port, wt.receiveMessageOnPort);`;
    this.worker = new Worker(source, { eval: true, workerData, transferList: [port2] });
    // Idle, it must not keep the gateway alive; while a batch waits, it is referenced again.
    this.worker.unref();
    this.port.unref();
    this.port.on('message', (msg: Reply[] | { closed: true }) => {
      if (!Array.isArray(msg)) return;
      for (const reply of msg) this.settle(reply);
      if (this.waiting.size === 0) this.worker.unref();
    });
    const fail = (err: Error) => {
      this.failed ??= err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the audit writer thread exited (code ${code})`)));
  }

  private settle(reply: Reply): void {
    const waiter = this.waiting.get(reply.id);
    if (!waiter) return;
    this.waiting.delete(reply.id);
    settleReply(this.options.chain, reply, waiter);
  }

  /**
   * Commit these entries (ENTRY_STRIDE fields each) after every batch submitted before. The result
   * carries every record's hash with `everyHash`, else the last one's only.
   */
  submit(entries: (string | null)[], everyHash = true): Promise<BatchResult> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      this.port.postMessage({ id, entries, everyHash });
    });
  }

  /** Commit what was submitted, close the writer's connection, end the thread. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.failed) return;
      const done = new Promise<void>((resolve) => {
        this.port.on('message', (msg: { closed?: boolean }) => {
          if (!Array.isArray(msg) && msg.closed) resolve();
        });
        this.worker.once('exit', () => resolve());
      });
      this.worker.ref();
      this.port.postMessage({ close: true });
      await done;
      this.failed = new Error('the audit writer is closed');
      await this.worker.terminate();
    })();
    return this.closed;
  }
}
