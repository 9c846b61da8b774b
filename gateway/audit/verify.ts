/** Online verification: seal the head, then walk the whole stored log through the same verifier the CLI uses. */
import type { VerifyResult } from '../../src/shared/audit.js';
import { ChainVerifier } from '../../src/shared/audit-chain.js';
import type { Store } from '../store/types.js';
import { recordsBetween } from './export.js';
import type { AuditLog } from './log.js';

export async function verifyStoredLog(store: Store, log: AuditLog): Promise<VerifyResult> {
  await log.seal();
  const verifier = new ChainVerifier(await store.listCheckpoints(), await store.listSigningKeys());
  for await (const record of recordsBetween(store, 0)) {
    if (verifier.add(record)) break;
  }
  return verifier.finish();
}
