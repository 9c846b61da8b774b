/**
 * The report's figures from the store: seal the head, then one pass over the records the period is read
 * from — the signed checkpoint before it through the one after it, page by page (bounded memory) —
 * each verified and, when in the period, counted by the shared core (src/shared/report/).
 */
import type { SigningPublicKey } from '../../src/shared/audit.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import {
  buildReport,
  type ChainHeadRef,
  type ComplianceReport,
  type EvidenceScope,
  type FrameworkId,
  PeriodReader,
} from '../../src/shared/report/index.js';
import { recordsBetween, verifiableRange } from '../audit/export.js';
import type { AuditLog } from '../audit/log.js';
import type { Store } from '../store/types.js';

export interface ReportRequest {
  frameworks: FrameworkId[];
  scope: EvidenceScope;
}

export interface ReportDeps {
  store: Store;
  log: Pick<AuditLog, 'seal'>;
  config: GatewayConfig;
  version: string;
  /** Keys whose checkpoints the gateway's verification trusts. */
  trustedKeys(): Promise<SigningPublicKey[]>;
}

/** Every chain's head. One chain today; a store with a chain per replica lists each here. */
async function chainHeads(store: Store): Promise<ChainHeadRef[]> {
  const head = await store.head();
  return head.seq > 0 ? [{ chain: 'main', seq: head.seq, hash: head.hash }] : [];
}

export async function computeReport(deps: ReportDeps, request: ReportRequest): Promise<ComplianceReport> {
  const { store } = deps;
  const { scope } = request;
  await deps.log.seal();
  const heads = await chainHeads(store);
  const range = await verifiableRange(store, { since: scope.from, until: scope.to });
  const checkpoints = range
    ? await store.listCheckpoints({ fromSeq: range.afterSeq, throughSeq: range.throughSeq })
    : [];
  const reader = new PeriodReader(scope, checkpoints, await deps.trustedKeys());
  if (range)
    for await (const record of recordsBetween(store, range.afterSeq, range.throughSeq)) reader.add(record);
  return buildReport(reader.finish(), {
    frameworks: request.frameworks,
    config: deps.config,
    chainHeads: heads,
    gatewayVersion: deps.version,
    generatedAt: new Date().toISOString(),
    connection: scope.connection,
  });
}
