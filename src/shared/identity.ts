/** Who is acting: made by the gateway from a verified token, carried on every record. */
export type IdentityKind = 'human' | 'service' | 'workload';

export interface Identity {
  /** The token's issuer URL. */
  issuer: string;
  /** Stable subject, from the issuer's configured subject claim. */
  subject: string;
  /** Display name (e.g. email), when the issuer provides one. */
  name?: string;
  groups: string[];
  /** OAuth client the token was issued to (azp / client_id), when known. */
  clientId?: string;
  kind: IdentityKind;
  /** Claims a workload issuer mapped (repository, ref, workflow ...), for the record. */
  claims?: Record<string, string>;
}
