/**
 * The gateway's persistent state behind one interface: the audit log (records, checkpoints, signing keys,
 * sink cursors) and the tables other modules build on (approvals, identities, time-boxed grants).
 * Two implementations share all SQL (sql-store.ts): SQLite (one gateway) and PostgreSQL (several replicas).
 */
import type { AuditRecord, Checkpoint, SessionSummary, SigningPublicKey } from '../../src/shared/audit.js';
import type { Identity, IdentityKind } from '../../src/shared/identity.js';

/** The newest record: what the next one chains onto. seq 0 and the genesis hash when the log is empty. */
export interface ChainHead {
  seq: number;
  hash: string;
}

export interface RecordQuery {
  /** Records with seq > afterSeq. */
  afterSeq?: number;
  /** Records with seq <= throughSeq. */
  throughSeq?: number;
  /** RFC 3339 bounds on `time`: since inclusive, until exclusive. */
  since?: string;
  until?: string;
  session?: string;
  /** Only records of this type. */
  type?: string;
  /** Default 1000. */
  limit?: number;
  /** Newest first. */
  descending?: boolean;
}

export interface SessionQuery {
  since?: string;
  until?: string;
  /** Identity subject. */
  subject?: string;
  connection?: string;
  limit?: number;
}

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'withdrawn' | 'used';

export interface ApprovalDecision {
  subject: string;
  issuer: string;
  name?: string;
  decision: 'approve' | 'reject';
  comment?: string;
  time: string;
}

export interface Approval {
  id: number;
  status: ApprovalStatus;
  requester: Identity;
  connection: string;
  session?: string;
  statement: string;
  statement_hash: string;
  params?: unknown[];
  rule: string;
  policy: string;
  /** Groups whose members may decide. */
  approvers: string[];
  approvals_required: number;
  decisions: ApprovalDecision[];
  created_at: string;
  expires_at: string;
  decided_at?: string;
  used_at?: string;
  /** wait (default): held in its session; deferred: filed by `exec --no-wait`, run later with `--approval`. */
  mode?: ApprovalMode;
  /** Bumped by every transition (compare-and-set across gateways). */
  revision?: number;
  /** The `statement` record the request was made for. */
  statement_id?: string;
  /** The session that ran the approved statement. */
  used_session?: string;
  /** Why it ended when it was not approved (reject reason, expiry, withdrawal). */
  outcome_reason?: string;
}
export type ApprovalMode = 'wait' | 'deferred';
export type NewApproval = Omit<
  Approval,
  'id' | 'status' | 'decisions' | 'decided_at' | 'used_at' | 'revision' | 'used_session' | 'outcome_reason'
>;
export type ApprovalPatch = Partial<
  Pick<
    Approval,
    'status' | 'decisions' | 'decided_at' | 'used_at' | 'expires_at' | 'used_session' | 'outcome_reason'
  >
>;

export interface IdentityEntry {
  issuer: string;
  subject: string;
  kind: IdentityKind;
  name?: string;
  groups: string[];
  first_seen: string;
  last_seen: string;
  revoked_at?: string;
  revoked_reason?: string;
}

export type GrantStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'revoked';

export interface Grant {
  id: number;
  issuer: string;
  subject: string;
  connection: string;
  policy: string;
  reason: string;
  status: GrantStatus;
  created_at: string;
  approved_at?: string;
  /** Set when approved: approval time + the requested duration. */
  expires_at?: string;
  /** Requested duration in milliseconds. */
  duration_ms: number;
  approved_by?: string;
  /** Bumped by every transition (compare-and-set across gateways). */
  revision?: number;
  /** Who approved or rejected (subject), and the reject reason or approve comment. */
  decided_by?: string;
  decision_reason?: string;
  /** The requester's identity as it was when asking (JSON of Identity). */
  requester?: Identity;
}
export type NewGrant = Omit<
  Grant,
  | 'id'
  | 'status'
  | 'approved_at'
  | 'expires_at'
  | 'approved_by'
  | 'revision'
  | 'decided_by'
  | 'decision_reason'
>;
export type GrantPatch = Partial<
  Pick<Grant, 'status' | 'approved_at' | 'expires_at' | 'approved_by' | 'decided_by' | 'decision_reason'>
>;

/** A record and its canonical JSON (`canonicalJson(record)`), the exact text the store keeps. */
export interface EncodedRecord {
  record: AuditRecord;
  text: string;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the gateway keeps files of its own (signing key): the store directory, or the gateway's data dir. */
  readonly dataDir: string;

  // --- audit log ---------------------------------------------------------------------------------
  /**
   * Append records in one transaction, holding the log's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL:
   * a transaction-scoped advisory lock) so that the head `build` is given is the true head across every
   * process. `build` makes the hashed records, each with its canonical JSON text (encoded once, by the
   * log, and stored as is); they are committed (durable) when the promise resolves.
   */
  appendBatch(build: (head: ChainHead) => EncodedRecord[]): Promise<AuditRecord[]>;
  head(): Promise<ChainHead>;
  /** Ordered by seq. */
  listRecords(query?: RecordQuery): Promise<AuditRecord[]>;
  /** Delete records with seq <= seq (retention). Returns how many. */
  deleteRecordsThrough(seq: number): Promise<number>;
  listSessions(query?: SessionQuery): Promise<SessionSummary[]>;

  addCheckpoint(checkpoint: Checkpoint): Promise<void>;
  /** Ordered by seq; bounds inclusive. */
  listCheckpoints(range?: { fromSeq?: number; throughSeq?: number }): Promise<Checkpoint[]>;
  deleteCheckpointsBefore(seq: number): Promise<number>;

  /** Register a public key (idempotent: registering it again changes nothing). */
  putSigningKey(key: SigningPublicKey): Promise<void>;
  retireSigningKey(keyId: string, at: string): Promise<void>;
  listSigningKeys(): Promise<SigningPublicKey[]>;

  /** The last seq a sink delivered (0 if never). */
  getSinkCursor(name: string): Promise<number>;
  setSinkCursor(name: string, seq: number): Promise<void>;

  // --- approvals ---------------------------------------------------------------------------------
  createApproval(approval: NewApproval): Promise<Approval>;
  getApproval(id: number): Promise<Approval | undefined>;
  listApprovals(filter?: { status?: ApprovalStatus; connection?: string }): Promise<Approval[]>;
  updateApproval(id: number, patch: ApprovalPatch): Promise<Approval | undefined>;
  /**
   * Compare-and-set: apply the patch (and bump the revision) only if the row is still at `revision`.
   * Undefined when someone else changed it first (re-read and decide again).
   */
  transitionApproval(id: number, revision: number, patch: ApprovalPatch): Promise<Approval | undefined>;
  /** Pending requests past their expiry (for the sweeper). */
  listExpiredApprovals(now: string): Promise<Approval[]>;

  // --- identities --------------------------------------------------------------------------------
  /** Insert or refresh last_seen, name, groups, kind. */
  recordIdentitySeen(identity: Identity, at: string): Promise<IdentityEntry>;
  getIdentity(issuer: string, subject: string): Promise<IdentityEntry | undefined>;
  listIdentities(): Promise<IdentityEntry[]>;
  /** Only the revoked ones: what each gateway polls to keep its revocation cache current. */
  listRevokedIdentities(): Promise<IdentityEntry[]>;
  /** Revoke (reason set) or restore (reason null). */
  setIdentityRevoked(
    issuer: string,
    subject: string,
    revoked: { at: string; reason: string } | null,
  ): Promise<boolean>;

  // --- time-boxed grants -------------------------------------------------------------------------
  createGrant(grant: NewGrant): Promise<Grant>;
  getGrant(id: number): Promise<Grant | undefined>;
  listGrants(filter?: { subject?: string; status?: GrantStatus }): Promise<Grant[]>;
  updateGrant(id: number, patch: GrantPatch): Promise<Grant | undefined>;
  /** Compare-and-set on the grant's revision, as transitionApproval. */
  transitionGrant(id: number, revision: number, patch: GrantPatch): Promise<Grant | undefined>;

  close(): Promise<void>;
}
