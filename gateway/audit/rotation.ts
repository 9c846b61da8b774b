/**
 * Rotating the signing key, as an operator does it: `hoop-gateway --config gateway.yaml
 * --rotate-signing-key`, run while this replica is stopped (a running one keeps the key it loaded).
 *
 * 1. The replica's chain is sealed with the old key (its tail, if a kill left one, must be vouched for
 *    by the head journal like at any start; an alarm stops the rotation).
 * 2. The key files rotate (checkpoint.ts rotateSigningKey): the old public key stays trusted from the
 *    data directory, the old private key is deleted.
 * 3. An `audit.key_rotated` record (old and new key ids and fingerprints) is appended and sealed with the
 *    new key. From that record on, a checkpoint of this chain by the old key fails verification.
 */
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { Store } from '../store/types.js';
import { fingerprintOf, loadOrCreateSigningKey, rotateSigningKey } from './checkpoint.js';
import { createAuditLog } from './log.js';
import { claimReplicaId, replicaIdOf } from './replicas.js';
import { loadTrustedKeys } from './trusted-keys.js';

export interface Rotation {
  replica: string;
  chain: string;
  old: { key_id: string; fingerprint: string };
  new: { key_id: string; fingerprint: string };
  /** The retired public key, kept (and trusted) in the data directory. */
  retiredFile: string;
}

export async function rotateKey(
  store: Store,
  config: Pick<GatewayConfig, 'audit' | 'retention' | 'replica'>,
  options: { baseDir?: string } = {},
): Promise<Rotation> {
  if (config.audit.signing_key_file) {
    throw new Error(
      'audit.signing_key_file is set: rotate by creating a new key (openssl genpkey -algorithm ed25519 -out new.pem), pointing audit.signing_key_file at it and adding the old public key (openssl pkey -in old.pem -pubout) to audit.trusted_keys',
    );
  }
  const replica = replicaIdOf(config, store);
  const checkpoint = { every: config.audit.checkpoint_every, intervalMs: 0 };
  // A running replica with this id keeps its key: the rotation is for a stopped one.
  await claimReplicaId(store, {
    id: replica,
    instance: 'key-rotation',
    heartbeatMs: config.replica.heartbeat,
    lostAfterMs: config.replica.lost_after,
  });
  const keys = (signingKey: ReturnType<typeof loadOrCreateSigningKey>) =>
    loadTrustedKeys({
      signingKey,
      dataDir: store.dataDir,
      files: config.audit.trusted_keys,
      baseDir: options.baseDir,
    });

  const oldKey = loadOrCreateSigningKey({ dataDir: store.dataDir });
  const before = await createAuditLog(store, {
    replica,
    signingKey: oldKey,
    trustedKeys: keys(oldKey),
    checkpoint,
  });
  if (before.alarm) {
    await before.close();
    throw new Error(`not rotating: ${before.alarm.message}`);
  }
  await before.close(); // seals the head with the old key

  const newKey = await rotateSigningKey(store, store.dataDir);
  const after = await createAuditLog(store, {
    replica,
    signingKey: newKey,
    trustedKeys: keys(newKey),
    checkpoint,
  });
  const rotation: Rotation = {
    replica,
    chain: after.chain,
    old: { key_id: oldKey.keyId, fingerprint: fingerprintOf(oldKey.publicKeyPem) },
    new: { key_id: newKey.keyId, fingerprint: fingerprintOf(newKey.publicKeyPem) },
    retiredFile: `audit-signing-key.${oldKey.keyId}.retired.pub.pem`,
  };
  try {
    await after.append({
      type: 'audit.key_rotated',
      data: {
        old_key_id: rotation.old.key_id,
        old_fingerprint: rotation.old.fingerprint,
        new_key_id: rotation.new.key_id,
        new_fingerprint: rotation.new.fingerprint,
        replica,
      },
    });
  } finally {
    await after.close(); // seals the rotation record with the new key
  }
  return rotation;
}
