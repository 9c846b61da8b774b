/**
 * What the relay asks before forwarding a statement, and what it reports afterwards. The relay owns
 * the sockets and the protocol state (the session model); the gate owns the decisions (policy,
 * masking, approvals, the record). Approvals and masking use these types too, so they live in a leaf
 * module that imports no stage.
 */
import type { FieldDescription } from '../pgwire/backend.js';
import type { NameView, PortalDef } from './names.js';
import type { Refusal } from './refusal.js';

/** A notice the gateway sends the client (e.g. "waiting for approval #42"): severity NOTICE, SQLSTATE 00000. */
export interface Notice {
  message: string;
  detail?: string;
  hint?: string;
  routine?: string;
}

export interface GateRequest {
  /** 'query' = a simple-protocol Query; 'parse' = a Parse (deny-only check); 'execute' = an Execute of a portal. */
  phase: 'query' | 'parse' | 'execute';
  /** The text judged and recorded: the Query's, the Parse's, or what the executed portal runs. */
  sql: string;
  /** Prepared statement name (extended protocol). */
  statementName?: string;
  portal?: string;
  /** Bound parameter values (Execute), as sent; their format codes; the Parse's parameter types. */
  parameters?: (Buffer | null)[];
  parameterFormats?: number[];
  parameterTypes?: readonly number[];
  /** Transaction status before this statement: I idle, T in a block, E aborted block. */
  transactionStatus: 'I' | 'T' | 'E';
  /** The session's prepared statements and portals as they will be when this message runs. */
  names: NameView;
  /**
   * Execute of a portal made by SQL PREPARE + Bind, or by DECLARE: the portal whose statement runs
   * (judged by its definition, not by re-reading `sql`, which for these is the PREPARE/DECLARE text).
   */
  portalRuns?: PortalDef;
  /** Aborted when the client cancels (CancelRequest) or disconnects while the gate is still deciding. */
  signal: AbortSignal;
  /** Send the client a NoticeResponse now (e.g. "waiting for approval #42"), while the statement waits. */
  notify(notice: Notice): void;
}

/**
 * Looks inside one statement's results when a rule needs to (masking). The relay calls it only for
 * statements that have one; every other result passes through as the same bytes.
 */
export interface ResultFilter {
  /** The result's columns (RowDescription). For the extended protocol this may not come at all. */
  columns?(fields: FieldDescription[]): void;
  /**
   * One DataRow: its body and each column's format (0 text, 1 binary).
   * Returns the whole replacement message, or undefined to pass the row unchanged.
   */
  dataRow(body: Buffer, formats: readonly number[]): Buffer | undefined;
  /** One CopyData message of COPY TO STDOUT; returns a replacement message or undefined. */
  copyData?(body: Buffer): Buffer | undefined;
  /** An ErrorResponse/NoticeResponse during this statement: fields (by code letter) to send instead, or undefined. */
  message?(fields: Record<string, string>): Record<string, string> | undefined;
  /**
   * The statement's work goes on after it completes, where no statement of its own is running: a
   * WITH HOLD cursor, which PostgreSQL materialises when the transaction commits, or a write's deferred
   * constraints and triggers, checked at COMMIT or SET CONSTRAINTS (an error there comes back as the
   * COMMIT's, a later statement's or Sync's). Until the transaction ends, every error and notice goes
   * through this filter's `message`.
   */
  readonly runsAtCommit?: boolean;
}

export type GateVerdict =
  /**
   * Forward. `statementIds` identify the records of the statements (one per statement of a Query);
   * `filters`, when present, has one entry per statement (undefined = results pass untouched).
   * `lsn`: the records were queued, not yet durable; the statement must wait until the log's durable
   * position reaches it (write-ahead). Absent when nothing needs to wait.
   */
  | {
      action: 'forward';
      statementIds: string[];
      notices?: Notice[];
      filters?: (ResultFilter | undefined)[];
      lsn?: number;
    }
  /** Refuse; the relay makes the database fail at this point so both sides agree on state. */
  | { action: 'refuse'; refusal: Refusal };

export interface StatementOutcome {
  /** CommandComplete tag, e.g. "SELECT 3". */
  tag?: string;
  rows: number;
  bytes: number;
  durationMs: number;
  /** SQLSTATE when the statement failed; "skipped" statements never ran. */
  sqlstate?: string;
  error?: string;
  skipped?: boolean;
  /** Column names and the first rows (text values), bounded, for replay. */
  result?: { columns: string[]; rows: (string | null)[][]; truncated: boolean };
}

/** What the server said that ends or fails transactions: every ErrorResponse and ReadyForQuery, in order. */
export type SessionEvent = { type: 'error' } | { type: 'ready'; status: 'I' | 'T' | 'E' };

export interface SessionGate {
  /** Synchronous in the common case; a promise only on the slow path (catalog load, approval wait). */
  check(request: GateRequest): Promise<GateVerdict> | GateVerdict;
  /** port to the protocol core: the server's errors and ReadyForQuery (the settings model follows them). */
  observe?(event: SessionEvent): void;
  /** A forwarded statement finished (or was skipped after an earlier error). */
  completed(statementId: string, outcome: StatementOutcome): void;
  /** Call back once the records up to `lsn` are durable, or with the error that lost them. */
  whenDurable(lsn: number, callback: (err?: Error) => void): void;
  /** The records of a held statement were lost: the refusal to send instead, or undefined (fail-open). */
  recordFailed(err: Error): Refusal | undefined;
  /**
   * This session's identity sees masked columns: notification payloads (which a trigger may fill with
   * any row) are withheld.
   */
  readonly masksNotifications?: boolean;
  /**
   * Every value the session's search_path may have as the next message starts (the settings model's
   * UNKNOWN value among them when it could be anything): a portal keeps the plan made when it was
   * bound, so its execution must be judged under (at least) the paths it may have been bound under.
   */
  searchPaths?(): string[];
  /** How many result rows/bytes of each statement to keep for replay (0 = none). */
  readonly recordRows: number;
  readonly recordBytes: number;
}
