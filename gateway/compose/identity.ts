/**
 * Who is calling: bearer-token verification against the configured issuers, the identities seen and
 * revoked (a store-refreshed cache, so replicas agree within seconds), and one `authenticate` for the API
 * and the tunnel. Adds the `jwks` readiness check: every issuer's signing keys fetched at least once.
 */
import type { Identity } from '../../src/shared/identity.js';
import { clip } from '../audit/auth-failures.js';
import { AuthError, createTokenVerifier, type TokenVerifier } from '../auth/verify.js';
import { createIdentityService, type IdentityService } from '../identities/service.js';
import type { CheckState, ReadinessCheck } from '../ops/health.js';
import type { SessionRegistry } from '../session/session.js';
import type { AuditParts } from './audit.js';
import type { GatewayContext } from './context.js';

export interface IdentityParts {
  verifier: TokenVerifier;
  identities: IdentityService;
  /** Verify a token, refuse revoked identities, remember who was seen; failures are recorded. */
  authenticate(token: string, source: string): Promise<Identity>;
}

/** While an issuer's keys were never fetched, try again this often (ms). */
const JWKS_RETRY_MS = 5_000;

export async function buildIdentity(
  ctx: GatewayContext,
  audit: AuditParts,
  registry: SessionRegistry,
): Promise<IdentityParts> {
  const { config, logger, metrics } = ctx;
  const verifier = createTokenVerifier(config.identity.issuers);
  const identities = createIdentityService({
    store: audit.store,
    record: (input) => audit.log.append(input),
    policies: config.policies,
    issuers: config.identity.issuers.map((i) => i.issuer),
    terminate: (issuer, subject, message) => registry.terminateSubject(issuer, subject, message),
    onError: (err) => logger.error({ err: err.message }, 'identity store failed'),
    // Revocation on another replica ends this one's sessions within about a second.
    refreshMs: 1000,
  });
  await identities.start();
  ctx.services.add('identities', () => identities.stop());
  ctx.readiness.add(await jwksCheck(ctx, verifier));

  const authenticate = async (token: string, source: string): Promise<Identity> => {
    let identity: Identity | undefined;
    try {
      identity = await verifier.verify(token);
      // A revoked identity is refused even with a valid token, until an admin restores it.
      identities.admit(identity);
      await identities.seen(identity);
      return identity;
    } catch (err) {
      const reason = err instanceof AuthError ? err.reason : 'error';
      metrics.authFailed(reason);
      // Nobody in particular (a token that does not verify): counted per source, never one record each.
      if (!identity) audit.running.authFailures.failed(source, reason);
      else
        await audit.recordQuietly({
          type: 'auth.failed',
          identity,
          source,
          data: { reason, message: clip((err as Error).message) },
        });
      throw err;
    }
  };
  return { verifier, identities, authenticate };
}

/**
 * Ready once every issuer's JWKS was fetched. Once is enough: jose keeps verifying with cached keys while
 * the IdP is briefly away, so an IdP outage must not take every replica out of the load balancer at once.
 */
async function jwksCheck(ctx: GatewayContext, verifier: TokenVerifier): Promise<ReadinessCheck> {
  const missing = () => verifier.keyStatus().filter((s) => !s.fetched);
  await verifier.fetchKeys();
  if (missing().length > 0) {
    const timer = setInterval(() => {
      if (missing().length === 0) clearInterval(timer);
      else void verifier.fetchKeys();
    }, JWKS_RETRY_MS);
    timer.unref();
    ctx.services.add('jwks retry', () => clearInterval(timer));
    for (const s of missing())
      ctx.logger.warn(
        { issuer: s.issuer, err: s.error },
        'cannot fetch the issuer signing keys yet; retrying',
      );
  }
  return {
    name: 'jwks',
    state(): CheckState {
      const notYet = missing();
      if (notYet.length === 0) return { ok: true };
      return {
        ok: false,
        message: notYet
          .map((s) => `${s.issuer}: keys not fetched${s.error ? ` (${s.error})` : ''}`)
          .join('; '),
      };
    },
  };
}
