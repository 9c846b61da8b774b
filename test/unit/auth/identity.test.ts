import { describe, expect, it } from 'vitest';
import { AuthError } from '../../../gateway/auth/errors.js';
import {
  checkBoundClaims,
  claimAt,
  globMatch,
  groupsFromClaim,
  identityFromClaims,
  identityKind,
} from '../../../gateway/auth/identity.js';
import { type IssuerConfig, issuerSchema } from '../../../src/shared/config/schema.js';

const issuer = (input: Record<string, unknown> = {}): IssuerConfig =>
  issuerSchema.parse({ issuer: 'https://idp.example.com', audience: 'https://gw.example.com', ...input });

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuthError) return err.reason;
    throw err;
  }
  return undefined;
}

describe('identityFromClaims', () => {
  it('maps subject, name, groups and client id of a person', () => {
    const identity = identityFromClaims(
      {
        iss: 'https://idp.example.com',
        sub: 'u-123',
        email: 'alice@example.com',
        groups: ['engineering', 'oncall'],
        azp: 'hoopctl',
      },
      issuer({ claims: { subject: 'sub', name: 'email', groups: 'groups' }, groups: ['everyone'] }),
    );
    expect(identity).toEqual({
      issuer: 'https://idp.example.com',
      subject: 'u-123',
      name: 'alice@example.com',
      groups: ['engineering', 'oncall', 'everyone'],
      clientId: 'hoopctl',
      kind: 'human',
    });
  });

  it('the issuer is the configured one whatever the token’s spelling of it (trailing slashes)', () => {
    for (const iss of ['https://idp.example.com', 'https://idp.example.com/', 'https://idp.example.com//']) {
      expect(identityFromClaims({ iss, sub: 'u-1' }, issuer()).issuer).toBe('https://idp.example.com');
    }
    // An issuer configured with its slash (Auth0 names itself so) keeps it.
    const slashed = issuer({ issuer: 'https://tenant.example.com/' });
    expect(identityFromClaims({ iss: 'https://tenant.example.com', sub: 'u-1' }, slashed).issuer).toBe(
      'https://tenant.example.com/',
    );
  });

  it('falls back to email, then name, for the display name when none is configured', () => {
    expect(identityFromClaims({ sub: 'a', email: 'a@x' }, issuer()).name).toBe('a@x');
    expect(identityFromClaims({ sub: 'a', name: 'Ann' }, issuer()).name).toBe('Ann');
    expect(identityFromClaims({ sub: 'a' }, issuer()).name).toBeUndefined();
  });

  it('reads dotted claim paths (Keycloak realm roles)', () => {
    const identity = identityFromClaims(
      { sub: 'x', realm_access: { roles: ['db-reviewers'] }, profile: { login: 'rita' } },
      issuer({ claims: { subject: 'profile.login', groups: 'realm_access.roles' } }),
    );
    expect(identity.subject).toBe('rita');
    expect(identity.groups).toEqual(['db-reviewers']);
  });

  it('refuses a token without the subject claim', () => {
    expect(reasonOf(() => identityFromClaims({ email: 'a@x' }, issuer()))).toBe('missing_claim');
    expect(reasonOf(() => identityFromClaims({ sub: '' }, issuer()))).toBe('missing_claim');
  });

  it('deduplicates groups from the claim and the fixed list', () => {
    const identity = identityFromClaims(
      { sub: 'a', groups: 'ci-deploy, audit' },
      issuer({ claims: { groups: 'groups' }, groups: ['ci-deploy'] }),
    );
    expect(identity.groups).toEqual(['ci-deploy', 'audit']);
  });

  it('keeps the known CI claims, the subject claim and bound claim names for workload tokens', () => {
    const identity = identityFromClaims(
      {
        iss: 'https://token.actions.githubusercontent.com',
        sub: 'repo:acme/app:ref:refs/heads/main',
        repository: 'acme/app',
        ref: 'refs/heads/main',
        workflow: 'deploy',
        run_id: 42,
        custom_team: 'payments',
        nonce: 'not-kept',
      },
      issuer({
        kind: 'workload',
        claims: { subject: 'repository' },
        bound_claims: { custom_team: 'pay*' },
        groups: ['ci-deploy'],
      }),
    );
    expect(identity.kind).toBe('workload');
    expect(identity.subject).toBe('acme/app');
    expect(identity.groups).toEqual(['ci-deploy']);
    expect(identity.claims).toEqual({
      repository: 'acme/app',
      ref: 'refs/heads/main',
      workflow: 'deploy',
      run_id: '42',
      custom_team: 'payments',
    });
  });

  it('maps GitLab CI ID tokens too', () => {
    const identity = identityFromClaims(
      {
        sub: 'project_path:acme/app:ref_type:branch:ref:main',
        project_path: 'acme/app',
        pipeline_source: 'push',
      },
      issuer({ kind: 'workload', claims: { subject: 'project_path' } }),
    );
    expect(identity.claims).toMatchObject({ project_path: 'acme/app', pipeline_source: 'push' });
  });

  it('enforces bound claims before anything else', () => {
    const config = issuer({ kind: 'workload', bound_claims: { ref: 'refs/heads/main' } });
    expect(reasonOf(() => identityFromClaims({ sub: 'x', ref: 'refs/heads/dev' }, config))).toBe(
      'bound_claims',
    );
  });
});

describe('groupsFromClaim', () => {
  it('accepts an array, a space separated or a comma separated string', () => {
    expect(groupsFromClaim({ g: ['a', 'b'] }, 'g')).toEqual(['a', 'b']);
    expect(groupsFromClaim({ g: 'a b  c' }, 'g')).toEqual(['a', 'b', 'c']);
    expect(groupsFromClaim({ g: 'a,b, c' }, 'g')).toEqual(['a', 'b', 'c']);
  });

  it('ignores what is not a list of names', () => {
    expect(groupsFromClaim({ g: { admin: true } }, 'g')).toEqual([]);
    expect(groupsFromClaim({ g: ['a', { b: 1 }, 7] }, 'g')).toEqual(['a', '7']);
    expect(groupsFromClaim({}, 'g')).toEqual([]);
    expect(groupsFromClaim({ g: ['a'] }, undefined)).toEqual([]);
  });
});

describe('identityKind', () => {
  const oidc = { kind: 'oidc' as const };
  it('is workload for workload issuers whatever the claims', () => {
    expect(identityKind({ sub: 'ci', client_id: 'ci' }, { kind: 'workload' })).toBe('workload');
  });
  it('is service for client-credentials tokens', () => {
    expect(identityKind({ sub: 'ci-bot', client_id: 'ci-bot' }, oidc)).toBe('service'); // oidc-provider
    expect(identityKind({ sub: 'svc@clients', azp: 'svc', gty: 'client-credentials' }, oidc)).toBe('service'); // Auth0
    expect(identityKind({ sub: 'f3c1', azp: 'svc', preferred_username: 'service-account-svc' }, oidc)).toBe(
      'service',
    ); // Keycloak
    expect(identityKind({ sub: 'svc', azp: 'svc' }, oidc)).toBe('service');
  });
  it('is human when a user stands behind the token', () => {
    expect(identityKind({ sub: 'alice@example.com', client_id: 'hoopctl' }, oidc)).toBe('human');
    expect(identityKind({ sub: 'alice' }, oidc)).toBe('human');
  });
});

describe('bound claims', () => {
  const bound = { repository: 'acme/app', ref: ['refs/heads/main', 'refs/tags/v*'] };

  it('pass when every claim matches one of its values', () => {
    expect(() => checkBoundClaims({ repository: 'acme/app', ref: 'refs/heads/main' }, bound)).not.toThrow();
    expect(() => checkBoundClaims({ repository: 'acme/app', ref: 'refs/tags/v1.2.0' }, bound)).not.toThrow();
  });

  it('fail on a mismatch, a missing claim, or a non-scalar claim', () => {
    expect(reasonOf(() => checkBoundClaims({ repository: 'acme/app', ref: 'refs/heads/dev' }, bound))).toBe(
      'bound_claims',
    );
    expect(reasonOf(() => checkBoundClaims({ repository: 'acme/app' }, bound))).toBe('bound_claims');
    expect(
      reasonOf(() => checkBoundClaims({ repository: { name: 'acme/app' }, ref: 'refs/heads/main' }, bound)),
    ).toBe('bound_claims');
  });

  it('say which claim and value were refused', () => {
    try {
      checkBoundClaims({ repository: 'evil/app', ref: 'refs/heads/main' }, bound);
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe(
        'the token\'s "repository" is "evil/app", but this issuer only accepts acme/app',
      );
    }
  });

  it('match array claims when any element matches', () => {
    expect(() => checkBoundClaims({ teams: ['web', 'db'] }, { teams: 'db' })).not.toThrow();
  });
});

describe('globMatch', () => {
  it('treats * as any run of characters, including slashes', () => {
    expect(globMatch('acme/*', 'acme/app')).toBe(true);
    expect(globMatch('refs/heads/*', 'refs/heads/feature/x')).toBe(true);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('acme/app', 'acme/app2')).toBe(false);
    expect(globMatch('acme/*', 'evil/acme/app')).toBe(false);
  });

  it('treats every other character literally', () => {
    expect(globMatch('a.b', 'axb')).toBe(false);
    expect(globMatch('v1.(2)+', 'v1.(2)+')).toBe(true);
    expect(globMatch('[abc]', 'a')).toBe(false);
  });
});

describe('claimAt', () => {
  it('prefers an exact claim name over a dotted path (URL-shaped claim names)', () => {
    expect(claimAt({ 'https://example.com/groups': ['x'] }, 'https://example.com/groups')).toEqual(['x']);
    expect(claimAt({ 'a.b': 1, a: { b: 2 } }, 'a.b')).toBe(1);
    expect(claimAt({ a: { b: 2 } }, 'a.b')).toBe(2);
    expect(claimAt({ a: null }, 'a.b')).toBeUndefined();
    expect(claimAt({}, '__proto__.polluted')).toBeUndefined();
  });
});
