/**
 * Online verification: seal this replica's head (with references to every chain that moved), then walk
 * every chain in the store through the same verifier the CLI uses offline, trusting only pinned keys.
 */
import type { Checkpoint, TrustedKey, VerifyResult } from '../../src/shared/audit.js';
import { LogVerifier } from '../../src/shared/audit-chain.js';
import type { AuditStore } from '../store/types.js';
import { recordsOfChain } from './export.js';
import type { AuditLog } from './log.js';

export interface StoredVerifyOptions {
  /** The pinned keys (trusted-keys.ts); never the store's own list. */
  trustedKeys: readonly TrustedKey[];
  /** Records older than this must be covered by a trusted checkpoint (the gateway passes 2 × checkpoint_interval). */
  maxUnsealedMs?: number;
  /** Checkpoints a witness holds (hoopctl audit verify --witness). */
  witness?: readonly Checkpoint[];
}

export async function verifyStoredLog(
  store: AuditStore,
  log: Pick<AuditLog, 'seal'> | undefined,
  options: StoredVerifyOptions,
): Promise<VerifyResult> {
  await log?.seal();
  const verifier = new LogVerifier(await store.listCheckpoints(), {
    trustedKeys: options.trustedKeys,
    maxUnsealedMs: options.maxUnsealedMs,
    witness: options.witness,
    now: Date.now(),
    complete: true,
  });
  for (const { chain } of await store.listChains()) {
    for await (const record of recordsOfChain(store, chain)) {
      if (verifier.add(record)) return verifier.finish();
    }
  }
  return verifier.finish();
}
