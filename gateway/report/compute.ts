/**
 * The report's figures from the store: seal the head, then one pass over the records the period is read
 * from — the signed checkpoint before it through the one after it, page by page (bounded memory) —
 * each verified and, when in the period, counted by the shared core (src/shared/report/).
 */
import type { TrustedKey } from '../../src/shared/audit.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import {
  buildReport,
  type ChainHeadRef,
  type ComplianceReport,
  type EvidenceScope,
  type FrameworkId,
  PeriodReader,
} from '../../src/shared/report/index.js';
import { recordsInRanges, verifiableRange } from '../audit/export.js';
import type { AuditLog } from '../audit/log.js';
import type { AuditStore } from '../store/types.js';

export interface ReportRequest {
  frameworks: FrameworkId[];
  scope: EvidenceScope;
}

export interface ReportDeps {
  store: AuditStore;
  log: Pick<AuditLog, 'seal'>;
  config: GatewayConfig;
  version: string;
  /** The keys the operator pinned (audit/trusted-keys.ts): never the store's own list. */
  trustedKeys(): readonly TrustedKey[];
}

/** Every chain's head (a chain per replica, and `legacy` for records of a single-chain store). */
async function chainHeads(store: AuditStore): Promise<ChainHeadRef[]> {
  return (await store.listChains())
    .filter((c) => c.head.seq > 0)
    .map((c) => ({ chain: c.chain, seq: c.head.seq, hash: c.head.hash }));
}

export async function computeReport(deps: ReportDeps, request: ReportRequest): Promise<ComplianceReport> {
  const { store } = deps;
  const { scope } = request;
  await deps.log.seal();
  const heads = await chainHeads(store);
  const ranges = await verifiableRange(store, { since: scope.from, until: scope.to });
  const reader = new PeriodReader(scope, await store.listCheckpoints(), deps.trustedKeys());
  for await (const record of recordsInRanges(store, ranges)) reader.add(record);
  return buildReport(reader.finish(), {
    frameworks: request.frameworks,
    config: deps.config,
    chainHeads: heads,
    gatewayVersion: deps.version,
    generatedAt: new Date().toISOString(),
    connection: scope.connection,
  });
}
