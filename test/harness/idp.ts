/**
 * Identity for tests, with no back doors:
 *   - startTestIdp: the real dev OIDC provider on a free port;
 *   - completeDeviceLogin (gateway/dev/device-browser.ts): a person's browser, scripted — it drives the
 *     provider's own verification, login and consent pages over HTTP with a cookie jar;
 *   - deviceFlowTokens / clientCredentialsTokens: what a client (hoopctl) does, through openid-client;
 *   - startWorkloadIssuer: a second issuer (discovery + JWKS over HTTP) that mints CI-shaped ID tokens.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../gateway/dev/idp.js';
import { freePort } from './ports.js';

export { completeDeviceLogin } from '../../gateway/dev/device-browser.js';
export { DEV_CLI_CLIENT_ID, DEV_CLIENTS, DEV_USERS } from '../../gateway/dev/idp.js';

import { completeDeviceLogin } from '../../gateway/dev/device-browser.js';

/** The dev IdP on a free loopback port, polling interval 1 s so device logins finish quickly. */
export async function startTestIdp(options: Partial<DevIdpOptions> & { audience: string }): Promise<DevIdp> {
  return startDevIdp({ devicePollInterval: 1, ...options, port: options.port ?? (await freePort()) });
}

export interface DeviceFlowOptions {
  /** Defaults to the dev IdP's public client. */
  clientId?: string;
  scope?: string;
}

/**
 * The whole device flow from the client's side (as hoopctl does it), with the browser part done by
 * completeDeviceLogin. Returns the token endpoint response (access_token, refresh_token, id_token...).
 */
export async function deviceFlowTokens(
  idp: Pick<DevIdp, 'issuer' | 'cliClientId'>,
  audience: string,
  username: string,
  password: string,
  options: DeviceFlowOptions = {},
): Promise<oidc.TokenEndpointResponse> {
  const config = await discover(idp.issuer, options.clientId ?? idp.cliClientId, oidc.None());
  const scope = options.scope ?? 'openid email profile offline_access';
  const authorization = await oidc.initiateDeviceAuthorization(config, { scope, resource: audience });
  const [, tokens] = await Promise.all([
    completeDeviceLogin(authorization.verification_uri, authorization.user_code, username, password),
    oidc.pollDeviceAuthorizationGrant(config, authorization, { resource: audience }),
  ]);
  return tokens;
}

/** A service account's token (client credentials grant) for the audience. */
export async function clientCredentialsTokens(
  issuer: string,
  audience: string,
  clientId: string,
  secret: string,
): Promise<oidc.TokenEndpointResponse> {
  const config = await discover(issuer, clientId, oidc.ClientSecretBasic(secret));
  return oidc.clientCredentialsGrant(config, { resource: audience });
}

function discover(issuer: string, clientId: string, auth: oidc.ClientAuth): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, undefined, auth, {
    execute: [oidc.allowInsecureRequests],
  });
}

// ---------------------------------------------------------------------------------------------
// A workload (CI) issuer: discovery + JWKS over HTTP for ES256 keys the test holds.

export interface WorkloadIssuer {
  issuer: string;
  /** How many times the JWKS was fetched (to check the verifier's refetch rate limit). */
  readonly jwksRequests: number;
  /** The kid tokens are signed with by default. */
  readonly currentKid: string;
  /** A new signing key, published in the JWKS from now on; returns its kid. */
  rotateKey(): Promise<string>;
  /** A key the JWKS does not publish (for "unknown kid" tests). */
  unpublishedKey(): Promise<{ kid: string; privateKey: CryptoKey }>;
  privateKey(kid?: string): CryptoKey;
  stop(): Promise<void>;
}

export interface WorkloadTokenOptions {
  /** Seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  kid?: string;
  /** Sign with this key instead of a published one. */
  privateKey?: CryptoKey;
}

export async function startWorkloadIssuer(): Promise<WorkloadIssuer> {
  const keys = new Map<string, { privateKey: CryptoKey; publicJwk: JWK }>();
  const newKey = async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = randomUUID();
    return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
  };
  const first = await newKey();
  keys.set(first.kid, first);
  let currentKid = first.kid;
  let jwksRequests = 0;

  const server: Server = createServer((req, res) => {
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      json({
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks`,
        id_token_signing_alg_values_supported: ['ES256'],
      });
    } else if (req.url === '/.well-known/jwks') {
      jwksRequests++;
      json({ keys: [...keys.values()].map((k) => k.publicJwk) });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    get jwksRequests() {
      return jwksRequests;
    },
    get currentKid() {
      return currentKid;
    },
    async rotateKey() {
      const key = await newKey();
      keys.set(key.kid, key);
      currentKid = key.kid;
      return key.kid;
    },
    async unpublishedKey() {
      const { kid, privateKey } = await newKey();
      return { kid, privateKey };
    },
    privateKey(kid = currentKid) {
      const key = keys.get(kid);
      if (!key) throw new Error(`no key ${kid}`);
      return key.privateKey;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A GitHub-Actions-shaped ID token from the workload issuer; claims override the defaults. */
export async function mintWorkloadToken(
  issuer: WorkloadIssuer,
  audience: string,
  claims: JWTPayload = {},
  options: WorkloadTokenOptions = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const repository = typeof claims.repository === 'string' ? claims.repository : 'acme/app';
  const ref = typeof claims.ref === 'string' ? claims.ref : 'refs/heads/main';
  const payload: JWTPayload = {
    iss: issuer.issuer,
    aud: audience,
    sub: `repo:${repository}:ref:${ref}`,
    repository,
    repository_owner: repository.split('/')[0],
    ref,
    ref_type: 'branch',
    sha: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3',
    workflow: 'deploy',
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    event_name: 'push',
    actor: 'octocat',
    run_id: '4242',
    runner_environment: 'github-hosted',
    jti: randomUUID(),
    iat: now,
    nbf: now - 5,
    exp: now + (options.expiresIn ?? 300),
    ...claims,
  };
  const kid = options.kid ?? issuer.currentKid;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid })
    .sign(options.privateKey ?? issuer.privateKey(kid));
}
