/**
 * The embedded store: one SQLite file (libsql's prebuilt binding, better-sqlite3's API) in WAL mode.
 *
 * Durability (audit.durability): `crash` (default) runs WAL with synchronous=NORMAL, which survives kill -9
 * of the gateway — a commit is in the WAL file, in the OS page cache, before COMMIT returns — but not a
 * power cut or kernel crash, which can lose the last commits. `power` runs synchronous=FULL: an fsync of
 * the WAL at every commit (group commit in audit/log.ts makes that one per batch), so an acknowledged
 * record survives the machine going down too, at the price of the disk's fsync latency per batch.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'libsql';
import type { SqlDriver, SqlExecutor } from './driver.js';

export const SQLITE_FILE = 'hoop.db';

type Db = InstanceType<typeof Database>;
interface PreparedStatement {
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
}

/** libsql adds a `_metadata` member to each row; drop it so rows are plain column maps. */
function clean<T>(row: unknown): T {
  const { _metadata: _m, ...rest } = row as Record<string, unknown>;
  return rest as T;
}

/** The tail of each database file's work queue, shared by all connections of this process. */
const fileQueues = new Map<string, Promise<unknown>>();

export function openSqliteDriver(dir: string, options: { durability?: 'crash' | 'power' } = {}): SqlDriver {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db: Db = new Database(join(dir, SQLITE_FILE));
  // Another process (a second gateway, a backup, a gateway killed a moment ago whose WAL the next
  // opener recovers) may hold a lock for a moment: wait, do not fail. First, so that switching the
  // journal mode below waits too.
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA journal_mode = WAL');
  const pragmas = [
    'PRAGMA busy_timeout = 5000',
    `PRAGMA synchronous = ${options.durability === 'power' ? 'FULL' : 'NORMAL'}`,
    'PRAGMA foreign_keys = ON',
  ];
  for (const pragma of pragmas) db.exec(pragma);

  const statements = new Map<string, PreparedStatement>();
  const prepare = (sql: string): PreparedStatement => {
    let stmt = statements.get(sql);
    if (!stmt) {
      stmt = db.prepare<unknown[]>(sql);
      statements.set(sql, stmt);
    }
    return stmt;
  };
  const bind = (params: unknown[]) =>
    params.map((p) => (p === undefined ? null : typeof p === 'boolean' ? Number(p) : p));

  const executor: SqlExecutor = {
    async query<T>(sql: string, params: unknown[] = []) {
      return prepare(sql)
        .all(...bind(params))
        .map((row) => clean<T>(row));
    },
    async run(sql: string, params: unknown[] = []) {
      return prepare(sql).run(...bind(params)).changes;
    },
  };

  // Work is queued per database file, for every connection this process has to it: an `await` inside a
  // transaction would otherwise let another query join it, and a second connection's BEGIN IMMEDIATE
  // would wait synchronously (busy_timeout) for a lock only this same, now blocked, event loop can free.
  // Other processes are kept out by SQLite's own file locks.
  const file = join(dir, SQLITE_FILE);
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const next = (fileQueues.get(file) ?? Promise.resolve()).then(work, work);
    fileQueues.set(
      file,
      next.catch(() => undefined),
    );
    return next;
  };
  let closed = false;
  const checkOpen = () => {
    if (closed) throw new Error('the store is closed');
  };

  return {
    dialect: 'sqlite',
    query: (sql, params) =>
      exclusive(async () => {
        checkOpen();
        return executor.query(sql, params);
      }),
    // A write outside a transaction still takes one of its own: a statement refused with SQLITE_BUSY in
    // autocommit mode can leave this connection reading a stale snapshot (every later read, and the
    // audit log's check of its own head, would then see the past). A refused BEGIN leaves nothing behind.
    run: (sql, params) =>
      exclusive(async () => {
        checkOpen();
        if (db.inTransaction) return executor.run(sql, params);
        try {
          db.exec('BEGIN IMMEDIATE');
          const changes = await executor.run(sql, params);
          db.exec('COMMIT');
          return changes;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      }),
    transaction: (fn) =>
      exclusive(async () => {
        checkOpen();
        try {
          // Inside the try: a BEGIN IMMEDIATE refused with SQLITE_BUSY may leave a read transaction open,
          // and every later read on this connection would then see that stale snapshot.
          db.exec('BEGIN IMMEDIATE');
          const result = await fn(executor);
          db.exec('COMMIT');
          return result;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      }),
    // The audit chain's appends use a connection of their own, inline or on a writer thread
    // (store/chain-writer.ts); WAL lets this connection read beside it, and SQLite's lock makes the two
    // take turns writing.
    writer: { backend: 'sqlite', target: file, pragmas, durability: options.durability ?? 'crash' },
    close: () =>
      exclusive(async () => {
        if (closed) return;
        closed = true;
        db.close();
      }),
  };
}
