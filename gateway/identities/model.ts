/** The identities domain's record: an identity the gateway has seen, and its revocation. Types only. */
import type { IdentityKind } from '../../src/shared/identity.js';

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
