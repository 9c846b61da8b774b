import type { ChainedInsert, ChainedInsertResult } from './sqlite-writer.js';

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
  /**
   * SQLite only: insert rows chained onto a head, in one transaction on the writer thread
   * (store/sqlite-writer.ts), if the head is still the one expected.
   */
  insertChained?(request: ChainedInsert): Promise<ChainedInsertResult>;
  close(): Promise<void>;
}

/** Advisory lock ids (PostgreSQL): one for appends to the audit chain, one for migrations. */
export const LOCKS = { auditAppend: 0x686f6f70, migrate: 0x686f6f71 } as const;
