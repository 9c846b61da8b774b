/**
 * The console's sign-in at the configured issuer: OpenID Connect authorization code flow with PKCE
 * (S256), state and nonce, done by the gateway itself (openid-client) so tokens never reach the page.
 * The access token is asked for the gateway's audience (RFC 8707 `resource`), exactly as `hoopctl
 * login` asks, and the API verifies it like any bearer token.
 */
import * as oidc from 'openid-client';
import type { IssuerConfig } from '../../src/shared/config/schema.js';
import { fetchTrustingCa } from '../../src/shared/fetch-with-ca.js';

export interface ConsoleTokens {
  accessToken: string;
  /** ms since the epoch. */
  expiresAt: number;
  refreshToken?: string;
}

export interface AuthorizationRequest {
  redirectUri: string;
  state: string;
  verifier: string;
  nonce: string;
}

export interface OidcLogin {
  /** Index (in identity.issuers[]) of the issuer the console signs in with, if any has console_client_id. */
  readonly issuer: number | undefined;
  authorizationUrl(request: AuthorizationRequest): Promise<URL>;
  /** The callback's URL (with code and state) → tokens; throws with a message a person can act on. */
  exchange(
    callback: URL,
    checks: { state: string; verifier: string; nonce: string; redirectUri: string },
  ): Promise<ConsoleTokens>;
  refresh(refreshToken: string): Promise<ConsoleTokens>;
}

const isLoopback = (host: string) =>
  host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** Seconds until expiry from the response, else the JWT's `exp`, else five minutes. */
function expiryOf(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): number {
  const seconds = tokens.expiresIn();
  if (seconds !== undefined) return Date.now() + seconds * 1000;
  try {
    const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1] ?? '', 'base64url').toString());
    if (typeof payload.exp === 'number') return payload.exp * 1000;
  } catch {
    // not a JWT we can read: the default below
  }
  return Date.now() + 300_000;
}

function toTokens(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): ConsoleTokens {
  return {
    accessToken: tokens.access_token,
    expiresAt: expiryOf(tokens),
    ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
  };
}

export function createOidcLogin(issuers: readonly IssuerConfig[]): OidcLogin {
  const index = issuers.findIndex((i) => i.kind === 'oidc' && i.console_client_id);
  const issuer = index >= 0 ? issuers[index] : undefined;
  let configuration: Promise<oidc.Configuration> | undefined;

  const discover = (): Promise<oidc.Configuration> => {
    if (!issuer) return Promise.reject(new Error('no issuer has console_client_id'));
    if (!configuration) {
      const url = new URL(issuer.issuer);
      const fetcher = fetchTrustingCa(issuer.ca) as oidc.CustomFetch;
      const secret = issuer.console_client_secret_env
        ? process.env[issuer.console_client_secret_env]
        : undefined;
      configuration = oidc
        .discovery(
          url,
          issuer.console_client_id!,
          undefined,
          secret ? oidc.ClientSecretBasic(secret) : oidc.None(),
          {
            execute: url.protocol === 'http:' && isLoopback(url.hostname) ? [oidc.allowInsecureRequests] : [],
            [oidc.customFetch]: fetcher,
          },
        )
        .then((config) => {
          config[oidc.customFetch] = fetcher;
          return config;
        })
        .catch((err: Error) => {
          configuration = undefined; // try discovery again next time
          throw new Error(`cannot reach the identity provider ${issuer.issuer}: ${err.message}`);
        });
    }
    return configuration;
  };
  const resource = () => ({ resource: issuer!.audience[0]! });

  return {
    issuer: index >= 0 ? index : undefined,
    async authorizationUrl({ redirectUri, state, verifier, nonce }) {
      const config = await discover();
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: issuer!.scopes.join(' '),
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        ...resource(),
      });
    },
    async exchange(callback, checks) {
      const config = await discover();
      const tokens = await oidc.authorizationCodeGrant(
        config,
        callback,
        { pkceCodeVerifier: checks.verifier, expectedState: checks.state, expectedNonce: checks.nonce },
        { redirect_uri: checks.redirectUri, ...resource() },
      );
      return toTokens(tokens);
    },
    async refresh(refreshToken) {
      const config = await discover();
      return toTokens(await oidc.refreshTokenGrant(config, refreshToken, resource()));
    },
  };
}
