/**
 * The compliance report's route (gateway/report): computed from the store, signed with the gateway's audit
 * checkpoint key (created by the audit builder before this runs).
 */
import { loadOrCreateSigningKey } from '../audit/checkpoint.js';
import type { AuditParts } from './audit.js';
import type { GatewayContext } from './context.js';

export function reportDeps(ctx: GatewayContext, audit: AuditParts) {
  const { config } = ctx;
  const key = loadOrCreateSigningKey({
    dataDir: audit.store.dataDir,
    keyFile: config.audit.signing_key_file,
  });
  return {
    store: audit.store,
    log: audit.log,
    config,
    version: ctx.version,
    trustedKeys: () => audit.store.listSigningKeys(),
    signer: { keyId: key.keyId, privateKey: key.privateKey },
  };
}
