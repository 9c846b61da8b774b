/** The audit log's record shape, shared by the gateway (writes), the CLI (reads, verifies offline). */
import type { Identity } from './identity.js';

export const RECORD_TYPES = [
  'auth.succeeded',
  'auth.failed',
  'session.started',
  'session.ended',
  'statement',
  // The outcome of a `statement` (rows, bytes, duration, SQLSTATE, recorded result): the statement's
  // own record is written before it is forwarded, so its outcome is a second record linked by id.
  'statement.result',
  'approval.requested',
  'approval.granted',
  'approval.rejected',
  'approval.expired',
  'approval.withdrawn',
  'policy.blocked',
  'access.requested',
  'access.granted',
  'access.rejected',
  'access.expired',
  'identity.revoked',
  'identity.restored',
  'gateway.started',
  'gateway.stopped',
  'retention.purged',
  'checkpoint',
] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

/** What a writer hands to the log: the log adds seq, time and the hashes. */
export interface AuditRecordInput {
  type: RecordType;
  identity?: Identity;
  /** Client address as the gateway saw it (ip:port). */
  source?: string;
  connection?: string;
  session?: string;
  /** Type-specific fields (see docs/audit.md). */
  data: Record<string, unknown>;
}

export interface AuditRecord extends AuditRecordInput {
  seq: number;
  /** RFC 3339, UTC, microsecond precision: 2026-11-23T10:40:00.123456Z */
  time: string;
  /** Hash of the previous record (64 hex zeros for the first). */
  prev: string;
  /** SHA-256 hex over prev and the canonical encoding of this record's content. */
  hash: string;
}
