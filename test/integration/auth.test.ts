/**
 * Token verification against real issuers: the dev oidc-provider (device flow completed through its
 * real pages, client credentials, refresh) and a workload issuer serving discovery + JWKS over HTTP.
 */
import { createPublicKey } from 'node:crypto';
import { base64url, decodeJwt, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthError, createTokenVerifier, type TokenVerifier } from '../../gateway/auth/verify.js';
import type { DevIdp } from '../../gateway/dev/idp.js';
import { type IssuerConfig, issuerSchema } from '../../src/shared/config/schema.js';
import {
  clientCredentialsTokens,
  deviceFlowTokens,
  mintWorkloadToken,
  startTestIdp,
  startWorkloadIssuer,
  type WorkloadIssuer,
} from '../harness/idp.js';

const AUDIENCE = 'https://gateway.test';

let idp: DevIdp;
let ci: WorkloadIssuer;
let verifier: TokenVerifier;
/** alice's device-flow tokens, obtained once through the real pages. */
let alice: oidc.TokenEndpointResponse;

const issuer = (input: Record<string, unknown>): IssuerConfig => issuerSchema.parse(input);
const oidcIssuer = () =>
  issuer({ issuer: idp.issuer, audience: AUDIENCE, claims: { name: 'email', groups: 'groups' } });
const workloadIssuer = (extra: Record<string, unknown> = {}) =>
  issuer({
    issuer: ci.issuer,
    audience: AUDIENCE,
    kind: 'workload',
    claims: { subject: 'repository' },
    bound_claims: { repository: 'acme/app', ref: 'refs/heads/main' },
    groups: ['ci-deploy'],
    ...extra,
  });

async function refusal(promise: Promise<unknown>): Promise<AuthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  return err as AuthError;
}

beforeAll(async () => {
  [idp, ci] = await Promise.all([startTestIdp({ audience: AUDIENCE }), startWorkloadIssuer()]);
  verifier = createTokenVerifier([oidcIssuer(), workloadIssuer()]);
  alice = await deviceFlowTokens(idp, AUDIENCE, 'alice@example.com', 'alice-dev');
});

afterAll(async () => {
  await Promise.all([idp?.stop(), ci?.stop()]);
});

describe('tokens obtained the real way are accepted', () => {
  it('a person through the device flow is a human with the groups of the IdP', async () => {
    const identity = await verifier.verify(alice.access_token);
    expect(identity).toEqual({
      issuer: idp.issuer,
      subject: 'alice@example.com',
      name: 'alice@example.com',
      groups: ['engineering'],
      clientId: 'hoopctl',
      kind: 'human',
    });
    expect(alice.refresh_token).toBeTruthy();
  });

  it('a refreshed access token is still for the gateway', async () => {
    const config = await oidc.discovery(new URL(idp.issuer), idp.cliClientId, undefined, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    const refreshed = await oidc.refreshTokenGrant(config, alice.refresh_token!, { resource: AUDIENCE });
    expect(refreshed.access_token).not.toBe(alice.access_token);
    expect((await verifier.verify(refreshed.access_token)).subject).toBe('alice@example.com');
  });

  it('a service account through client credentials is a service', async () => {
    const { access_token } = await clientCredentialsTokens(idp.issuer, AUDIENCE, 'ci-bot', 'ci-bot-secret');
    expect(await verifier.verify(access_token)).toEqual({
      issuer: idp.issuer,
      subject: 'ci-bot',
      groups: ['ci-deploy'],
      clientId: 'ci-bot',
      kind: 'service',
    });
  });

  it('a CI ID token whose bound claims match is a workload with its CI claims recorded', async () => {
    const identity = await verifier.verify(await mintWorkloadToken(ci, AUDIENCE));
    expect(identity.kind).toBe('workload');
    expect(identity.subject).toBe('acme/app');
    expect(identity.groups).toEqual(['ci-deploy']);
    expect(identity.claims).toMatchObject({
      repository: 'acme/app',
      ref: 'refs/heads/main',
      workflow: 'deploy',
      job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
    });
  });
});

describe('the device login pages refuse what a person gets wrong', () => {
  it('a wrong password does not log in', async () => {
    await expect(deviceFlowTokens(idp, AUDIENCE, 'rita@example.com', 'not-her-password')).rejects.toThrow(
      /login refused/,
    );
  });
});

describe('bad tokens are refused with the reason', () => {
  it('expired (dev IdP token past its lifetime, no skew)', async () => {
    const shortLived = await startTestIdp({ audience: AUDIENCE, accessTokenTtl: 1 });
    try {
      const { access_token } = await clientCredentialsTokens(
        shortLived.issuer,
        AUDIENCE,
        'ci-bot',
        'ci-bot-secret',
      );
      const strict = createTokenVerifier([
        issuer({ issuer: shortLived.issuer, audience: AUDIENCE, clock_skew: 0 }),
      ]);
      await strict.verify(access_token);
      await new Promise((r) => setTimeout(r, 2100));
      expect((await refusal(strict.verify(access_token))).reason).toBe('expired');
    } finally {
      await shortLived.stop();
    }
  });

  it('expired beyond the clock skew (workload token)', async () => {
    const token = await mintWorkloadToken(ci, AUDIENCE, {}, { expiresIn: -120 });
    const err = await refusal(verifier.verify(token));
    expect(err.reason).toBe('expired');
    expect(err.message).toMatch(/expired/);
  });

  it('wrong audience', async () => {
    const elsewhere = createTokenVerifier([
      issuer({ issuer: idp.issuer, audience: 'https://other-gateway.test' }),
    ]);
    expect((await refusal(elsewhere.verify(alice.access_token))).reason).toBe('wrong_audience');
    const ciForOther = await mintWorkloadToken(ci, 'https://other-gateway.test');
    expect((await refusal(verifier.verify(ciForOther))).reason).toBe('wrong_audience');
  });

  it('an issuer that is not configured', async () => {
    const onlyCi = createTokenVerifier([workloadIssuer()]);
    const err = await refusal(onlyCi.verify(alice.access_token));
    expect(err.reason).toBe('unknown_issuer');
    expect(err.message).toContain(idp.issuer);
  });

  it('alg: none', async () => {
    const [, payload] = alice.access_token.split('.');
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    expect((await refusal(verifier.verify(`${header}.${payload}.`))).reason).toBe('alg_not_allowed');
  });

  it('HS256 signed with the issuer public key as the secret', async () => {
    const jwks = (await (await fetch(`${idp.issuer}/jwks`)).json()) as { keys: Record<string, string>[] };
    const pem = createPublicKey({ key: jwks.keys[0]!, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const forged = await new SignJWT({ ...decodeJwt(alice.access_token), groups: ['audit'] })
      .setProtectedHeader({ alg: 'HS256', kid: jwks.keys[0]!.kid })
      .sign(new TextEncoder().encode(String(pem)));
    expect((await refusal(verifier.verify(forged))).reason).toBe('alg_not_allowed');
  });

  it('a tampered payload', async () => {
    const [header, payload, signature] = alice.access_token.split('.');
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload!)));
    const tampered = base64url.encode(JSON.stringify({ ...claims, groups: ['audit', 'engineering'] }));
    expect((await refusal(verifier.verify(`${header}.${tampered}.${signature}`))).reason).toBe(
      'bad_signature',
    );
  });

  it('a token signed by a published key id but another key', async () => {
    const stranger = await ci.unpublishedKey();
    const token = await mintWorkloadToken(
      ci,
      AUDIENCE,
      {},
      { kid: ci.currentKid, privateKey: stranger.privateKey },
    );
    expect((await refusal(verifier.verify(token))).reason).toBe('bad_signature');
  });

  it('bound claims that do not match', async () => {
    const branch = await mintWorkloadToken(ci, AUDIENCE, { ref: 'refs/heads/feature-x' });
    const err = await refusal(verifier.verify(branch));
    expect(err.reason).toBe('bound_claims');
    expect(err.message).toContain('refs/heads/feature-x');
    const fork = await mintWorkloadToken(ci, AUDIENCE, { repository: 'evil/app' });
    expect((await refusal(verifier.verify(fork))).reason).toBe('bound_claims');
  });

  it('not a JWT at all', async () => {
    expect((await refusal(verifier.verify('not-a-token'))).reason).toBe('malformed');
    expect((await refusal(verifier.verify(''))).reason).toBe('malformed');
  });
});

describe('unknown key ids', () => {
  it('refetch the JWKS at most once per cooldown, and pick up a rotated key after it', async () => {
    const rotating = await startWorkloadIssuer();
    try {
      const config = issuer({
        issuer: rotating.issuer,
        audience: AUDIENCE,
        kind: 'workload',
        jwks_uri: `${rotating.issuer}/.well-known/jwks`,
      });
      const cooled = createTokenVerifier([config], { jwksCooldownMs: 1000 });
      await cooled.verify(await mintWorkloadToken(rotating, AUDIENCE));
      expect(rotating.jwksRequests).toBe(1);

      // A flood of tokens with kids nobody published: refused, and no request to the issuer per token.
      for (let i = 0; i < 10; i++) {
        const stranger = await rotating.unpublishedKey();
        const forged = await mintWorkloadToken(
          rotating,
          AUDIENCE,
          {},
          { kid: stranger.kid, privateKey: stranger.privateKey },
        );
        expect((await refusal(cooled.verify(forged))).reason).toBe('unknown_key');
      }
      expect(rotating.jwksRequests).toBe(1);

      // The issuer rotates: within the cooldown the new kid is still unknown, after it the key is fetched.
      await rotating.rotateKey();
      const fresh = await mintWorkloadToken(rotating, AUDIENCE);
      expect((await refusal(cooled.verify(fresh))).reason).toBe('unknown_key');
      await new Promise((r) => setTimeout(r, 1100));
      expect((await cooled.verify(fresh)).kind).toBe('workload');
      expect(rotating.jwksRequests).toBe(2);
    } finally {
      await rotating.stop();
    }
  });
});
