/**
 * The approvals domain's records: statement approval requests and time-boxed access grants, as the
 * store keeps them, and what the domain needs of a store (ApprovalStore, GrantStore: store/ implements
 * them). Types only.
 */
import type { Identity } from '../../src/shared/identity.js';

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
  /**
   * The requester's search_path when the request was filed, as the session model knew it from the
   * server: what the statement's names meant to the reviewer, and what a deferred run must use.
   */
  search_path?: string;
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
  /** The replica holding the waiting statement: if it dies, the others withdraw the request. */
  replica?: string;
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

// --- what the approvals domain needs of a store (store/ implements it) ---------------------------

/** Approval requests (gateway/approvals). */
export interface ApprovalStore {
  createApproval(approval: NewApproval): Promise<Approval>;
  getApproval(id: number): Promise<Approval | undefined>;
  listApprovals(filter?: {
    status?: ApprovalStatus;
    connection?: string;
    replica?: string;
  }): Promise<Approval[]>;
  updateApproval(id: number, patch: ApprovalPatch): Promise<Approval | undefined>;
  /**
   * Compare-and-set: apply the patch (and bump the revision) only if the row is still at `revision`.
   * Undefined when someone else changed it first (re-read and decide again).
   */
  transitionApproval(id: number, revision: number, patch: ApprovalPatch): Promise<Approval | undefined>;
  /** Pending requests past their expiry (for the sweeper). */
  listExpiredApprovals(now: string): Promise<Approval[]>;
}

/** Time-boxed access grants (gateway/approvals). */
export interface GrantStore {
  createGrant(grant: NewGrant): Promise<Grant>;
  getGrant(id: number): Promise<Grant | undefined>;
  listGrants(filter?: { subject?: string; status?: GrantStatus }): Promise<Grant[]>;
  updateGrant(id: number, patch: GrantPatch): Promise<Grant | undefined>;
  /** Compare-and-set on the grant's revision, as transitionApproval. */
  transitionGrant(id: number, revision: number, patch: GrantPatch): Promise<Grant | undefined>;
}
