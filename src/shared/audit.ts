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
  // Who read the audit log and what they asked for (sessions list/show/replay/export, verify, report).
  'audit.accessed',
  // The configuration in force at each start: its hash and what changed since the previous one.
  'config.loaded',
  // The signing key was rotated (old and new key ids); counted by the compliance report.
  'audit.key_rotated',
  // One call of an MCP tool (docs/agents.md): tool, arguments (secrets redacted), decision, result summary.
  'mcp.tool',
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

/** 64 hex zeros: the `prev` of the very first record. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * A signed statement "the record at `seq` has hash `hash`", made by a gateway's Ed25519 key. Signatures
 * are what a forger without the key cannot recompute: a re-hashed chain no longer matches them.
 */
export interface Checkpoint {
  seq: number;
  hash: string;
  /** When it was signed (RFC 3339, UTC). */
  time: string;
  /** Which key signed it (see SigningPublicKey.key_id). */
  key_id: string;
  /** Base64 Ed25519 signature over the canonical encoding of { seq, hash, time, key_id }. */
  signature: string;
}

/** A gateway signing key's public half; old keys stay listed after rotation so old checkpoints verify. */
export interface SigningPublicKey {
  /** First 16 hex digits of SHA-256 over the key's SPKI DER. */
  key_id: string;
  /** SPKI PEM. */
  public_key: string;
  created_at: string;
  /** Set when a newer key took over. */
  retired_at?: string;
}

/** What `statement.result` records keep of a result for replay: masked values only, bounded. */
export interface RecordedResult {
  columns: string[];
  rows: (string | null)[][];
  /** More rows or bytes came than recording.max_rows / max_bytes kept. */
  truncated: boolean;
}

/** `data` of a `statement.result` record. */
export interface StatementResultData {
  statement_id: string;
  /** Command tag, e.g. "SELECT 3". */
  tag?: string;
  rows?: number;
  bytes?: number;
  duration_ms?: number;
  sqlstate?: string;
  error?: string;
  masked_columns?: string[];
  result?: RecordedResult;
}

/** GET /v1/sessions: one line per session. */
export interface SessionSummary {
  id: string;
  identity?: Identity;
  connection?: string;
  source?: string;
  /** What opened it: connect, exec, mcp … (from the session's first record). */
  client?: string;
  started: string;
  /** Absent while the session is open (or when the gateway died before recording its end). */
  ended?: string;
  statements: number;
  /** `statement` records with decision "deny", plus `policy.blocked` records. */
  denied: number;
}

/** GET /v1/audit/verify, and `hoopctl audit verify`. */
export type VerifyResult =
  | { ok: true; count: number; first_seq?: number; last_seq?: number; checkpoints: number }
  | { ok: false; seq: number; reason: string };
