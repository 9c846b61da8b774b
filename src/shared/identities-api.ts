/** The identities API (GET /v1/identities, POST /v1/identities/revoke|restore) shared by gateway and CLI. */
import type { IdentityKind } from './identity.js';

/** One identity the gateway has seen (authenticated at least once). */
export interface IdentityView {
  issuer: string;
  subject: string;
  kind: IdentityKind;
  name?: string;
  groups: string[];
  /** RFC 3339. */
  first_seen: string;
  /** RFC 3339; refreshed at most once a minute while the identity is in use. */
  last_seen: string;
  /** Whole days since last_seen. */
  idle_days: number;
  /** Idle for at least the `stale` window asked for (always false without one). */
  stale: boolean;
  revoked: boolean;
  revoked_at?: string;
  revoked_reason?: string;
  /** Policies that name this subject in `subjects:` (not those reached through groups). */
  policies: string[];
}

/** A subject named in a policy's `subjects:` that needs a look: never seen, or idle past the window. */
export interface PolicySubjectView {
  subject: string;
  /** The issuer the policy names it from. */
  issuer: string;
  policies: string[];
  status: 'never_seen' | 'stale';
  last_seen?: string;
  idle_days?: number;
}

/** GET /v1/identities[?stale=30d] */
export interface IdentityListResponse {
  /** When the listing was made (RFC 3339). */
  now: string;
  /** The stale window asked for, in days (absent without ?stale). */
  stale_days?: number;
  /** Every identity seen (newest first); with ?stale, only those idle for at least stale_days. */
  identities: IdentityView[];
  /** Policy subjects never seen; with ?stale, also those idle for at least stale_days. */
  policy_subjects: PolicySubjectView[];
}

/** POST /v1/identities/revoke and /v1/identities/restore */
export interface IdentityChangeRequest {
  subject: string;
  /** Only this issuer's identity of that subject (default: every issuer the subject was seen from). */
  issuer?: string;
  /** Required to revoke. */
  reason?: string;
}

export interface IdentityChangeResponse {
  subject: string;
  /** The identities changed (one per issuer). */
  identities: IdentityView[];
  /** Open sessions this gateway ended (revoke only; other replicas end theirs when they next poll). */
  terminated_sessions: number;
}
