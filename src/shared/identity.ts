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

/**
 * A policy's `subjects:` entry names one identity of one issuer: `https://idp.example.com#alice`
 * (the issuer URL, `#`, the subject — issuer identifiers have no fragment, so the first `#` splits),
 * `{ issuer: https://idp.example.com, subject: alice }`, or a bare `alice`, which is accepted only
 * when exactly one issuer is configured (the config is refused otherwise, naming the key).
 */
export type SubjectEntry = string | { issuer: string; subject: string };

export interface IssuerSubject {
  issuer: string;
  subject: string;
}

/** Issuer URLs compare without a trailing slash (`https://idp/` is `https://idp`). */
export function sameIssuer(a: string, b: string): boolean {
  return a.replace(/\/$/, '') === b.replace(/\/$/, '');
}

/** The identity a `subjects:` entry names, or an error message when it names none unambiguously. */
export function subjectOf(entry: SubjectEntry, issuers: readonly string[]): IssuerSubject | string {
  if (typeof entry !== 'string') return { issuer: entry.issuer, subject: entry.subject };
  const hash = entry.indexOf('#');
  if (hash > 0 && /^https?:\/\//.test(entry)) {
    const issuer = entry.slice(0, hash);
    const subject = entry.slice(hash + 1);
    if (!subject) return `"${entry}" has no subject after "#"`;
    if (!issuers.some((i) => sameIssuer(i, issuer))) {
      return `"${entry}" names issuer ${issuer}, which is not in identity.issuers`;
    }
    return { issuer, subject };
  }
  if (issuers.length !== 1) {
    return `"${entry}" does not say which issuer it is from (${issuers.length} issuers are configured): write issuer#subject, e.g. ${issuers[0] ?? 'https://idp.example.com'}#${entry}, or { issuer, subject }`;
  }
  return { issuer: issuers[0]!, subject: entry };
}

/** One string per identity (issuer and subject), for sets and maps. */
export function identityKey(identity: IssuerSubject): string {
  return `${identity.issuer.replace(/\/$/, '')}\u0000${identity.subject}`;
}
