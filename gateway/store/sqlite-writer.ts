/**
 * The audit chain's appends to the embedded store, committed on a worker thread.
 *
 * Why: every statement waits for its write-ahead record to be committed, and a SQLite commit is
 * synchronous. On the event loop it blocked every session's I/O for the length of each commit
 * (≈ 40 % of the gateway's CPU under pgbench), and since no new append could queue during a commit,
 * batches stayed at about two statements. On a worker, sessions keep relaying while a batch commits,
 * and everything that arrives meanwhile forms the next batch.
 *
 * The worker owns a second connection to the same file (WAL: readers never wait for it; the main
 * thread's own write transactions — approvals, grants, retention — take turns with it through SQLite's
 * lock). It knows nothing of audit records: it reads the chain's head, compares it with the head the
 * caller chained onto, and inserts the rows only if they match, all in one transaction.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface ChainedInsert {
  /** Queries tried in order; the first that returns a row gives the head `{ seq, hash }`. */
  headQueries: string[];
  /** The head the rows were chained onto (seq 0 and no head at all: the chain starts at genesis). */
  expect: { seq: number; hash: string };
  insert: string;
  rows: unknown[][];
}

/** Committed, or the head found instead (null: no head, the chain starts at genesis). */
export type ChainedInsertResult =
  | { committed: true }
  | { committed: false; head: { seq: number; hash: string } | null };

/** The worker's whole program (plain JavaScript, evaluated: it must also run when the gateway runs from source). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.libsql);
const db = new Database(workerData.file);
for (const pragma of workerData.pragmas) db.exec(pragma);
const prepared = new Map();
const prepare = (sql) => {
  let stmt = prepared.get(sql);
  if (!stmt) prepared.set(sql, (stmt = db.prepare(sql)));
  return stmt;
};
const readHead = (queries) => {
  for (const sql of queries) {
    const row = prepare(sql).get();
    if (row) return { seq: Number(row.seq), hash: String(row.hash) };
  }
  return null;
};
parentPort.on('message', (msg) => {
  if (msg.close) {
    db.close();
    parentPort.postMessage({ closed: true });
    return;
  }
  const { id, headQueries, expect, insert, rows } = msg;
  try {
    db.exec('BEGIN IMMEDIATE');
    try {
      const head = readHead(headQueries);
      const same = head && head.seq === expect.seq && head.hash === expect.hash;
      const genesis = !head && expect.seq === 0;
      if (!same && !genesis) {
        db.exec('ROLLBACK');
        parentPort.postMessage({ id, result: { committed: false, head } });
        return;
      }
      const stmt = prepare(insert);
      for (const row of rows) stmt.run(...row);
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
    parentPort.postMessage({ id, result: { committed: true } });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

export class SqliteChainWriter {
  private readonly worker: Worker;
  private readonly waiting = new Map<
    number,
    { resolve: (r: ChainedInsertResult) => void; reject: (e: Error) => void }
  >();
  private nextId = 1;
  private failed: Error | undefined;
  private closing: (() => void) | undefined;

  constructor(file: string, pragmas: string[]) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file, pragmas, libsql: createRequire(import.meta.url).resolve('libsql') },
    });
    // Idle, it must not keep the gateway alive; while an append waits, it is referenced again.
    this.worker.unref();
    this.worker.on(
      'message',
      (msg: { id: number; result?: ChainedInsertResult; error?: string; closed?: boolean }) => {
        if (msg.closed) return this.closing?.();
        const waiter = this.waiting.get(msg.id);
        if (!waiter) return;
        this.waiting.delete(msg.id);
        if (this.waiting.size === 0) this.worker.unref();
        if (msg.error !== undefined) waiter.reject(new Error(msg.error));
        else waiter.resolve(msg.result!);
      },
    );
    const fail = (err: Error) => {
      this.failed ??= err;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the store's writer thread exited (code ${code})`)));
  }

  run(request: ChainedInsert): Promise<ChainedInsertResult> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, ...request });
    });
  }

  /** Close the worker's connection (after the appends already posted) and end the thread. */
  async close(): Promise<void> {
    if (this.failed) return;
    const closed = new Promise<void>((resolve) => {
      this.closing = resolve;
      this.worker.once('exit', () => resolve());
    });
    this.worker.ref();
    this.worker.postMessage({ close: true });
    await closed;
    this.failed = new Error('the store is closed');
    await this.worker.terminate();
  }
}
