/** An identity is its issuer and its subject: a colliding `sub` from another issuer is someone else. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createIdentityService } from '../../../gateway/identities/service.js';
import { createPolicyEngine } from '../../../gateway/policy/engine.js';
import { openStore } from '../../../gateway/store/index.js';
import { checkedConfigSchema, configSchema } from '../../../src/shared/config/schema.js';
import { type Identity, subjectOf } from '../../../src/shared/identity.js';

const IDP = 'https://idp.example.com';
const CI = 'https://ci.example.com';

const base = (subjects: unknown[], issuers = [IDP, CI]) => ({
  listen: { insecure_loopback: true },
  identity: { issuers: issuers.map((issuer) => ({ issuer, audience: 'gw' })) },
  connections: [{ name: 'db', host: 'h', database: 'd', user: 'u' }],
  policies: [{ name: 'named', subjects, connections: ['db'], rules: [{ name: 'all', allow: ['read'] }] }],
});

const person = (issuer: string, subject: string): Identity => ({
  issuer,
  subject,
  groups: [],
  kind: 'human',
});

describe('policy subjects', () => {
  it('issuer#subject and { issuer, subject } name one identity; the same sub of another issuer does not match', () => {
    for (const entry of [`${IDP}#alice`, { issuer: `${IDP}/`, subject: 'alice' }]) {
      const engine = createPolicyEngine(configSchema.parse(base([entry])));
      expect(engine.policiesFor(person(IDP, 'alice'), 'db').map((p) => p.name)).toEqual(['named']);
      expect(engine.policiesFor(person(CI, 'alice'), 'db')).toEqual([]);
    }
  });

  it('a bare subject is refused with several issuers, naming the key; accepted with one', () => {
    const several = checkedConfigSchema.safeParse(base(['alice']));
    expect(several.success).toBe(false);
    expect(several.error?.issues[0]).toMatchObject({ path: ['policies', 0, 'subjects', 0] });
    expect(several.error?.issues[0]?.message).toMatch(/does not say which issuer.*issuer#subject/);
    const unknown = checkedConfigSchema.safeParse(base(['https://other.example.com#alice']));
    expect(unknown.error?.issues[0]?.message).toMatch(/not in identity\.issuers/);
    const one = checkedConfigSchema.parse(base(['alice'], [IDP]));
    const engine = createPolicyEngine(one);
    expect(engine.policiesFor(person(IDP, 'alice'), 'db')).toHaveLength(1);
    expect(engine.policiesFor(person(CI, 'alice'), 'db')).toHaveLength(0);
  });

  it('subjectOf splits at the first #: subjects may contain one', () => {
    expect(subjectOf(`${CI}#repo:acme/app#main`, [IDP, CI])).toEqual({
      issuer: CI,
      subject: 'repo:acme/app#main',
    });
  });
});

describe('revocation and the stale report by issuer and subject', () => {
  it('a subject seen from two issuers is not revoked without --issuer; the report keeps them apart', async () => {
    const store = await openStore({ path: mkdtempSync(join(tmpdir(), 'hoop-subjects-')) });
    try {
      await store.recordIdentitySeen(person(IDP, 'alice'), new Date().toISOString());
      await store.recordIdentitySeen(
        person(CI, 'alice'),
        new Date(Date.now() - 90 * 86_400_000).toISOString(),
      );
      const terminated: string[] = [];
      const service = createIdentityService({
        store,
        policies: [{ name: 'p', subjects: [`${CI}#alice`, `${IDP}#bob`] }],
        issuers: [IDP, CI],
        record: async () => {},
        terminate: (issuer, subject) => {
          terminated.push(`${issuer} ${subject}`);
          return 0;
        },
      });
      const admin = person(IDP, 'admin');
      await expect(service.revoke({ subject: 'alice', reason: 'x' }, admin, 'test')).rejects.toMatchObject({
        status: 409,
        message: expect.stringMatching(/2 issuers.*--issuer/),
      });
      const done = await service.revoke({ subject: 'alice', issuer: CI, reason: 'left' }, admin, 'test');
      expect(done.identities.map((i) => i.issuer)).toEqual([CI]);
      expect(terminated).toEqual([`${CI} alice`]);
      expect(service.isRevoked(person(CI, 'alice'))).toBe(true);
      expect(service.isRevoked(person(IDP, 'alice'))).toBe(false);
      // The policy names the CI alice (stale: 90 days) and the IdP's bob (never seen).
      const report = await service.list(30 * 86_400_000);
      expect(report.policy_subjects).toEqual([
        expect.objectContaining({ subject: 'alice', issuer: CI, status: 'stale', policies: ['p'] }),
        expect.objectContaining({ subject: 'bob', issuer: IDP, status: 'never_seen' }),
      ]);
      const listed = await service.list();
      expect(listed.identities.find((i) => i.issuer === IDP)?.policies).toEqual([]);
      expect(listed.identities.find((i) => i.issuer === CI)?.policies).toEqual(['p']);
    } finally {
      await store.close();
    }
  });
});
