/** The identities domain's record: an identity the gateway has seen, and its revocation. Types only. */
import type { Identity, IdentityKind } from '../../src/shared/identity.js';

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

/** Identities seen, and revocation (gateway/identities). */
export interface IdentityStore {
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
}
