/**
 * Bearer token verification at the gateway: which configured issuer, whose key, which algorithm,
 * for whom (audience), still valid — then the claims become an Identity (identity.ts).
 *
 * The issuer is chosen by the token's unverified `iss`, but nothing else is trusted until the
 * signature verifies against that issuer's own JWKS with an asymmetric algorithm from its allow-list.
 */
import {
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import type { IssuerConfig } from '../../src/shared/config/schema.js';
import { type FetchFunction, fetchTrustingCa } from '../../src/shared/fetch-with-ca.js';
import type { Identity } from '../../src/shared/identity.js';
import { AuthError } from './errors.js';
import { identityFromClaims } from './identity.js';

export { AuthError, type AuthFailure } from './errors.js';

export interface TokenVerifier {
  /** The identity a valid token stands for; throws AuthError otherwise. */
  verify(token: string): Promise<Identity>;
  /** Fetch every issuer's JWKS now (readiness); resolves when each has been tried once. */
  fetchKeys(): Promise<void>;
  /** Per issuer: have its signing keys been fetched (once is enough: cached keys keep verifying)? */
  keyStatus(): { issuer: string; fetched: boolean; error?: string }[];
}

export interface VerifierOptions {
  /**
   * After a JWKS fetch, an unknown `kid` does not refetch for this long (ms): a flood of forged tokens
   * with random kids must not turn the gateway into a request amplifier against the IdP. Default 30 s.
   */
  jwksCooldownMs?: number;
  /** Longest a fetched JWKS is used before it is fetched again (ms). Default 10 min. */
  jwksMaxAgeMs?: number;
  /** Timeout of discovery and JWKS requests (ms). Default 5 s. */
  fetchTimeoutMs?: number;
}

/** Tokens bigger than this are refused before any parsing: no legitimate JWT comes close. */
const MAX_TOKEN_BYTES = 16 * 1024;

/** Algorithms that must never verify a bearer token, whatever the configuration says. */
const FORBIDDEN_ALGORITHM = /^(none|HS\d+)$/i;

export function createTokenVerifier(issuers: IssuerConfig[], options: VerifierOptions = {}): TokenVerifier {
  const byIssuer = new Map(
    issuers.map((issuer) => [withoutTrailingSlash(issuer.issuer), new IssuerKeys(issuer, options)]),
  );

  return {
    async verify(token: string): Promise<Identity> {
      const { header, claims } = decodeUnverified(token);
      const iss = typeof claims.iss === 'string' ? claims.iss : undefined;
      if (!iss) throw new AuthError('malformed', 'the token has no issuer (iss)');
      const keys = byIssuer.get(withoutTrailingSlash(iss));
      if (!keys) throw new AuthError('unknown_issuer', `tokens from ${iss} are not accepted by this gateway`);

      const config = keys.config;
      const alg = typeof header.alg === 'string' ? header.alg : '';
      if (FORBIDDEN_ALGORITHM.test(alg) || !(config.algorithms as string[]).includes(alg)) {
        throw new AuthError(
          'alg_not_allowed',
          `tokens signed with "${alg || 'no algorithm'}" are not accepted`,
        );
      }

      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, await keys.keySet(), {
          issuer: iss,
          audience: config.audience,
          algorithms: config.algorithms,
          clockTolerance: Math.round(config.clock_skew / 1000),
          requiredClaims: ['exp'],
        }));
      } catch (err) {
        throw toAuthError(err, iss);
      }
      return identityFromClaims(payload as Record<string, unknown>, config);
    },
    async fetchKeys() {
      await Promise.all([...byIssuer.values()].map((keys) => keys.prefetch()));
    },
    keyStatus: () => [...byIssuer.values()].map((keys) => keys.status()),
  };
}

/** One issuer's keys: the JWKS location resolved once (config or discovery), then jose's cached remote set. */
class IssuerKeys {
  private jwks?: ReturnType<typeof createRemoteJWKSet>;
  private resolving?: Promise<ReturnType<typeof createRemoteJWKSet>>;
  private readonly fetch: FetchFunction;

  constructor(
    readonly config: IssuerConfig,
    private readonly options: VerifierOptions,
  ) {
    this.fetch = fetchTrustingCa(config.ca);
  }

  async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return this.jwks;
    // A failed discovery is not cached: the next token tries again.
    this.resolving ??= this.resolve().finally(() => {
      this.resolving = undefined;
    });
    return this.resolving;
  }

  private lastError?: string;

  /** Fetch the keys unless already fetched; remembers the error for status(). Never throws. */
  async prefetch(): Promise<void> {
    if (this.jwks?.jwks()) return;
    try {
      const set = await this.keySet();
      if (!set.jwks()) await set.reload();
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
    }
  }

  status(): { issuer: string; fetched: boolean; error?: string } {
    const fetched = this.jwks?.jwks() !== undefined;
    return {
      issuer: this.config.issuer,
      fetched,
      ...(fetched || !this.lastError ? {} : { error: this.lastError }),
    };
  }

  private async resolve(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const jwksUri = this.config.jwks_uri ?? (await this.discoverJwksUri());
    this.jwks = createRemoteJWKSet(new URL(jwksUri), {
      cooldownDuration: this.options.jwksCooldownMs ?? 30_000,
      cacheMaxAge: this.options.jwksMaxAgeMs ?? 600_000,
      timeoutDuration: this.options.fetchTimeoutMs ?? 5_000,
      [customFetch]: this.fetch,
    });
    return this.jwks;
  }

  private async discoverJwksUri(): Promise<string> {
    const issuer = withoutTrailingSlash(this.config.issuer);
    const url = `${issuer}/.well-known/openid-configuration`;
    let document: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const response = await this.fetch(url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.options.fetchTimeoutMs ?? 5_000),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      document = (await response.json()) as typeof document;
    } catch (err) {
      throw new AuthError('issuer_unreachable', `cannot read ${url}: ${(err as Error).message}`);
    }
    if (typeof document.issuer !== 'string' || withoutTrailingSlash(document.issuer) !== issuer) {
      throw new AuthError(
        'issuer_unreachable',
        `${url} names a different issuer (${String(document.issuer)})`,
      );
    }
    if (typeof document.jwks_uri !== 'string') {
      throw new AuthError('issuer_unreachable', `${url} has no jwks_uri`);
    }
    return document.jwks_uri;
  }
}

function decodeUnverified(token: string): { header: Record<string, unknown>; claims: JWTPayload } {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_BYTES) {
    throw new AuthError('malformed', 'the bearer token is empty or too large');
  }
  try {
    return { header: decodeProtectedHeader(token) as Record<string, unknown>, claims: decodeJwt(token) };
  } catch {
    throw new AuthError('malformed', 'the bearer token is not a signed JWT');
  }
}

function toAuthError(err: unknown, iss: string): AuthError {
  if (err instanceof AuthError) return err;
  if (err instanceof errors.JWTExpired)
    return new AuthError('expired', 'the token has expired: log in again');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud')
      return new AuthError('wrong_audience', 'the token was issued for another audience');
    if (err.claim === 'nbf' || err.claim === 'iat') {
      return new AuthError('not_yet_valid', 'the token is not valid yet (check the clocks)');
    }
    if (err.claim === 'iss') return new AuthError('unknown_issuer', `tokens from ${iss} are not accepted`);
    return new AuthError('missing_claim', `the token's "${err.claim}" claim is invalid: ${err.reason}`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError('bad_signature', 'the token signature does not verify');
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return new AuthError('alg_not_allowed', 'the token algorithm is not allowed');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError('unknown_key', `the token was signed with a key ${iss} does not publish`);
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err instanceof TypeError) {
    return new AuthError('issuer_unreachable', `cannot read the signing keys of ${iss}`);
  }
  if (err instanceof errors.JOSEError && err.code === 'ERR_JOSE_GENERIC') {
    return new AuthError('issuer_unreachable', `cannot read the signing keys of ${iss}: ${err.message}`);
  }
  if (err instanceof errors.JOSEError)
    return new AuthError('malformed', `the token is malformed: ${err.message}`);
  return new AuthError(
    'malformed',
    `the token cannot be verified: ${(err as Error)?.message ?? String(err)}`,
  );
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
