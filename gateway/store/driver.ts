import type { WriterBackend } from './types.js';

/** The little SQL surface both backends provide, so one SqlStore holds all the queries. */

export type Dialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  /** `?` placeholders (the PostgreSQL driver numbers them). Rows as plain objects. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** A statement without rows; how many rows it changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: Dialect;
  /**
   * Run `fn` in one write transaction, committed before the promise resolves, rolled back if it throws.
   * `lock` names a cluster-wide lock held until commit (PostgreSQL advisory lock); SQLite's BEGIN IMMEDIATE
   * is already the whole database's write lock.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, lock?: number): Promise<T>;
  /** How the audit chain writer (store/chain-writer.ts) reaches this database with a connection of its own. */
  readonly writer: WriterBackend;
  close(): Promise<void>;
}

/**
 * Advisory lock ids (PostgreSQL): the legacy single chain's appends (gateways before per-replica chains
 * take it; this version never writes that chain), and migrations.
 */
export const LOCKS = { auditAppend: 0x686f6f70, migrate: 0x686f6f71 } as const;
