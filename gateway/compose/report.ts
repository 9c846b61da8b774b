/**
 * The compliance report's route (gateway/report): computed from the store, signed with the gateway's audit
 * checkpoint key (created by the audit builder before this runs).
 */
import type { AuditParts } from './audit.js';
import type { GatewayContext } from './context.js';

export function reportDeps(ctx: GatewayContext, audit: AuditParts) {
  const { config } = ctx;
  const key = audit.running.signingKey;
  return {
    store: audit.store,
    log: audit.log,
    config,
    version: ctx.version,
    // Only the keys the operator pinned (its own, retired ones, audit.trusted_keys): never the store's list.
    trustedKeys: () => audit.running.trustedKeys,
    signer: { keyId: key.keyId, privateKey: key.privateKey },
  };
}
