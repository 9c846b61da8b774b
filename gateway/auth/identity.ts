/**
 * Verified token claims → the Identity the gateway acts on. Pure: no keys, no network, no clock.
 * The signature, issuer, audience and lifetime were checked by verify.ts before this runs.
 */
import type { IssuerConfig } from '../../src/shared/config/schema.js';
import type { Identity, IdentityKind } from '../../src/shared/identity.js';
import { AuthError } from './errors.js';

export type Claims = Record<string, unknown>;

/**
 * CI/workload claims worth keeping on every record (GitHub Actions, GitLab CI, and the like), so an
 * auditor can tell which pipeline, branch and workflow acted. Bound claim names are kept as well.
 */
export const WORKLOAD_CLAIMS = [
  // GitHub Actions
  'repository',
  'repository_owner',
  'repository_id',
  'ref',
  'ref_type',
  'sha',
  'workflow',
  'workflow_ref',
  'job_workflow_ref',
  'environment',
  'event_name',
  'actor',
  'run_id',
  'run_attempt',
  'runner_environment',
  // GitLab CI
  'project_path',
  'project_id',
  'namespace_path',
  'pipeline_source',
  'pipeline_id',
  'ref_protected',
  'user_login',
  'ci_config_ref_uri',
  'job_id',
] as const;

/** Map a verified token's claims to an Identity, enforcing the issuer's bound claims. */
export function identityFromClaims(claims: Claims, issuer: IssuerConfig): Identity {
  checkBoundClaims(claims, issuer.bound_claims);

  const subject = scalarClaim(claims, issuer.claims.subject);
  if (subject === undefined || subject === '') {
    throw new AuthError(
      'missing_claim',
      `the token has no "${issuer.claims.subject}" claim to use as the subject`,
    );
  }
  const name = issuer.claims.name
    ? scalarClaim(claims, issuer.claims.name)
    : (scalarClaim(claims, 'email') ?? scalarClaim(claims, 'name'));
  const groups = unique([...groupsFromClaim(claims, issuer.claims.groups), ...issuer.groups]);
  const clientId = scalarClaim(claims, 'azp') ?? scalarClaim(claims, 'client_id');
  const kind = identityKind(claims, issuer);

  // The configured issuer, never the token's own spelling of it: verify.ts matches `iss` without its
  // trailing slashes, and revocation, approvals and cancel compare issuers as strings, so a token
  // saying `https://idp/` must be the same identity as one saying `https://idp`.
  const identity: Identity = { issuer: issuer.issuer, subject, groups, kind };
  if (name !== undefined) identity.name = name;
  if (clientId !== undefined) identity.clientId = clientId;
  if (kind === 'workload') identity.claims = workloadClaims(claims, issuer);
  return identity;
}

/**
 * workload: the issuer is configured as a CI/workload issuer.
 * service: a client-credentials token — no end user behind it. oidc-provider (and most IdPs) put the
 *   client id in `sub` for those; Auth0 marks them `gty: client-credentials`; Keycloak names the
 *   service-account user `service-account-<client>`.
 * human: everything else from an oidc issuer.
 */
export function identityKind(claims: Claims, issuer: Pick<IssuerConfig, 'kind'>): IdentityKind {
  if (issuer.kind === 'workload') return 'workload';
  const sub = scalarClaim(claims, 'sub');
  const clientIds = [scalarClaim(claims, 'client_id'), scalarClaim(claims, 'azp')].filter(Boolean);
  if (scalarClaim(claims, 'gty') === 'client-credentials') return 'service';
  if (sub !== undefined && clientIds.includes(sub)) return 'service';
  if (scalarClaim(claims, 'preferred_username')?.startsWith('service-account-')) return 'service';
  return 'human';
}

/** Groups from a claim holding an array, or a space/comma separated string. */
export function groupsFromClaim(claims: Claims, path: string | undefined): string[] {
  if (!path) return [];
  const value = claimAt(claims, path);
  if (Array.isArray(value))
    return value.filter((g) => typeof g === 'string' || typeof g === 'number').map(String);
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** Every bound claim must be present and match one of its allowed values (`*` is a wildcard). */
export function checkBoundClaims(claims: Claims, bound: Record<string, string | string[]>): void {
  for (const [path, allowed] of Object.entries(bound)) {
    const patterns = Array.isArray(allowed) ? allowed : [allowed];
    const value = claimAt(claims, path);
    const values = (Array.isArray(value) ? value : [value]).filter(isScalar).map(String);
    if (values.length === 0) {
      throw new AuthError('bound_claims', `the token has no "${path}" claim, which this issuer requires`);
    }
    if (!values.some((v) => patterns.some((p) => globMatch(p, v)))) {
      throw new AuthError(
        'bound_claims',
        `the token's "${path}" is "${values.join(',')}", but this issuer only accepts ${patterns.join(' or ')}`,
      );
    }
  }
}

/** `*` matches any run of characters (including `/`); everything else is literal. */
export function globMatch(pattern: string, value: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's').test(value);
}

/** A claim by name, else by dotted path into nested objects (`realm_access.roles`). */
export function claimAt(claims: Claims, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let current: unknown = claims;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function scalarClaim(claims: Claims, path: string): string | undefined {
  const value = claimAt(claims, path);
  return isScalar(value) ? String(value) : undefined;
}

function workloadClaims(claims: Claims, issuer: IssuerConfig): Record<string, string> {
  const names = unique([...WORKLOAD_CLAIMS, issuer.claims.subject, ...Object.keys(issuer.bound_claims)]);
  const kept: Record<string, string> = {};
  for (const name of names) {
    const value = scalarClaim(claims, name);
    if (value !== undefined) kept[name] = value;
  }
  return kept;
}

function isScalar(value: unknown): value is string | number | boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
