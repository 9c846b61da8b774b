/** Shapes of the gateway's HTTP API, shared by the gateway (answers) and the CLI (asks). */
import type { Identity } from './identity.js';

/** GET /.well-known/hoop-gateway — public; tells `hoopctl login` where to authenticate. */
export interface GatewayDiscovery {
  /** The interactive (device flow) issuer and its public client id. */
  issuer: string;
  client_id: string;
  /** The value tokens must carry in `aud` (sent as RFC 8707 `resource`). */
  audience: string;
  /** OAuth scopes to ask for. */
  scopes: string[];
  version: string;
}

/** GET /v1/whoami */
export interface WhoAmI {
  identity: Identity;
  /** Policy names that apply to me (standing and time-boxed). */
  policies: string[];
  review: boolean;
  audit: boolean;
  admin: boolean;
  token_expires_at?: string;
}

/** GET /v1/connections — what I may reach, and the rules that apply to me there. */
export interface ConnectionView {
  name: string;
  description?: string;
  database: string;
  policies: PolicyView[];
  /** Requestable policies I am a member of but not granted now (`hoopctl request` asks for one). */
  requestable: (PolicyView & { max_duration: string })[];
}

export interface PolicyView {
  name: string;
  rules: RuleView[];
  masking: { columns?: string[]; tags?: string[]; mask: string }[];
}

export interface RuleView {
  name: string;
  action: 'allow' | 'deny' | 'approve';
  classes: string[];
  relations?: string[];
  functions?: string[];
  flags?: string[];
  approvers?: string[];
  timeout?: string;
}

/** Headers the tunnel's WebSocket upgrade carries besides Authorization. */
export const TUNNEL_HEADERS = {
  /** The one-time password the local client must present (SCRAM) at the gateway's startup handshake. */
  localPassword: 'x-hoop-local-password',
  /** Which CLI command opened the tunnel: connect | exec. */
  client: 'x-hoop-client',
  /** exec --approval ID: the approval request whose statement this tunnel runs. */
  approval: 'x-hoop-approval',
  /**
   * How long this client waits for an approval: milliseconds (exec --approval-timeout; the request
   * expires at the sooner of this and the rule's timeout), or `none` (exec --no-wait: file the request,
   * refuse the statement at once, leave the request pending for `exec --approval ID`).
   */
  approvalWait: 'x-hoop-approval-wait',
  /** Upgrade response: the gateway's session id, for the audit trail. */
  session: 'x-hoop-session',
} as const;

export const TUNNEL_PATH = '/v1/tunnel/';
export const DISCOVERY_PATH = '/.well-known/hoop-gateway';

// ---- approvals and time-boxed access (docs/approvals.md) -------------------------------------------

/** A statement held for approval. GET /v1/approvals, GET /v1/approvals/:id. */
export interface ApprovalView {
  /** Statement approvals are numbers ("42"); access requests are "access-<n>". */
  id: string;
  kind: 'statement';
  status: 'pending' | 'approved' | 'rejected' | 'expired' | 'withdrawn' | 'used';
  /** wait: held in its session; deferred: filed by `exec --no-wait`, run later with `exec --approval`. */
  mode: 'wait' | 'deferred';
  requester: Identity;
  connection: string;
  session?: string;
  /** The exact text as it came on the wire, and its SHA-256. */
  statement: string;
  statement_hash: string;
  /** Extended protocol: bound values (text as is, binary as \x<hex>, NULL as null). */
  params?: (string | null)[];
  /**
   * The requester's search_path when it was filed (what the statement's unqualified names meant);
   * absent when it was not known exactly. statement_hash covers it; a deferred run uses it.
   */
  search_path?: string;
  rule: string;
  policy: string;
  approvers: string[];
  approvals_required: number;
  decisions: {
    subject: string;
    name?: string;
    decision: 'approve' | 'reject';
    comment?: string;
    time: string;
  }[];
  created_at: string;
  expires_at: string;
  decided_at?: string;
  used_at?: string;
  /** The `statement` audit record it was made for. */
  statement_id?: string;
  outcome_reason?: string;
  /** The masking rules the requester's results fall under on that connection (policy, columns or tags, mask). */
  masking?: MaskingView[];
  /** May the caller approve or reject it now? */
  can_decide: boolean;
  /** When the caller may not: why, in one line (separation of duties, role, approver group, state). */
  why_not?: string;
}

export interface MaskingView {
  policy: string;
  columns?: string[];
  tags?: string[];
  mask: string;
}

/** A time-boxed access request (hoopctl request). */
export interface AccessRequestView {
  id: string;
  kind: 'access';
  status: 'pending' | 'approved' | 'rejected' | 'expired' | 'revoked';
  requester: { issuer: string; subject: string; name?: string };
  connection: string;
  policy: string;
  reason: string;
  /** Requested duration, e.g. "1h", and in milliseconds. */
  duration: string;
  duration_ms: number;
  created_at: string;
  approved_at?: string;
  /** Set once approved: the grant vanishes at this time. */
  expires_at?: string;
  decided_by?: string;
  decision_reason?: string;
  /** Approved and not yet expired. */
  active: boolean;
  can_decide: boolean;
  /** When the caller may not decide it: why, in one line. */
  why_not?: string;
}

/** GET /v1/approvals[?all=true][&status=pending] */
export interface ApprovalListResponse {
  approvals: ApprovalView[];
  access_requests: AccessRequestView[];
}

/** GET /v1/access-requests[?all=true] */
export interface AccessRequestListResponse {
  access_requests: AccessRequestView[];
}

/** POST /v1/approvals/:id/approve ({comment}) and /reject ({reason}); :id is "42" or "access-3". */
export interface DecideRequest {
  comment?: string;
  reason?: string;
}
export interface DecideResponse {
  id: string;
  status: string;
  /** Statement approvals: distinct approvals so far, and how many the rule needs. */
  approvals?: number;
  approvals_required?: number;
  expires_at?: string;
}

/** POST /v1/access-requests */
export interface AccessRequestBody {
  connection: string;
  policy: string;
  /** A duration: 30m, 1h, 8h. */
  duration: string;
  reason: string;
}
