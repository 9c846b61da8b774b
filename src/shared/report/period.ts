/**
 * One pass over the records a period is read from (the signed checkpoint before it through the one
 * after it): each record is verified (hash chain, signatures) and, when it is in the period, counted.
 * The gateway feeds it from its store, `hoopctl report verify --export` from an export file.
 */
import type { AuditRecord, Checkpoint, SigningPublicKey } from '../audit.js';
import { ChainVerifier } from '../audit-chain.js';
import { EvidenceCollector, type EvidenceScope } from './evidence.js';

export class PeriodReader {
  readonly evidence: EvidenceCollector;
  private readonly verifier: ChainVerifier;
  private seen = 0;

  constructor(scope: EvidenceScope, checkpoints: readonly Checkpoint[], keys: readonly SigningPublicKey[]) {
    this.evidence = new EvidenceCollector(scope);
    this.verifier = new ChainVerifier(checkpoints, keys);
    for (const cp of checkpoints) this.evidence.addCheckpoint(cp);
  }

  add(record: AuditRecord): void {
    this.seen++;
    this.verifier.add(record);
    this.evidence.add(record);
  }

  /** Verification's verdict goes into the evidence; returns the finished collector. */
  finish(): EvidenceCollector {
    this.evidence.verification(this.seen > 0 ? this.verifier.finish() : undefined);
    this.evidence.finish();
    return this.evidence;
  }
}

/** Period bounds as records write time (six fraction digits), so string comparison is time order. */
export function periodBound(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, -1)}000Z`;
}
