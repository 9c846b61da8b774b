/**
 * Approval requests and time-boxed grants (gateway/approvals): held statements, decisions made on any
 * replica, expiry, webhooks. Reports requests and decisions (with their latency) to the metrics.
 */
import type { AuditRecordInput } from '../../src/shared/audit.js';
import { createNotifier } from '../approvals/notify.js';
import { type ApprovalService, createApprovalService } from '../approvals/service.js';
import type { ApprovalEvent, GatewayMetrics } from '../ops/metrics.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { Approval } from '../store/types.js';
import type { AuditParts } from './audit.js';
import type { GatewayContext } from './context.js';

export async function buildApprovals(
  ctx: GatewayContext,
  audit: AuditParts,
  engine: PolicyEngine,
): Promise<ApprovalService> {
  const { config, logger } = ctx;
  const approvals = createApprovalService({
    store: audit.store,
    log: audit.log,
    engine,
    config,
    notifier: createNotifier(config.notify.webhooks, {
      onError: (url, err) => logger.warn({ url, err: err.message }, 'notify webhook failed'),
    }),
    onError: (err) => logger.error({ err: err.message }, 'approvals background task failed'),
    observe: (type, approval) => observeApproval(ctx.metrics, type, approval),
  });
  await approvals.start();
  ctx.services.add('approvals', () => approvals.stop());
  ctx.prometheus?.watch({
    approvalsPending: async () => (await audit.store.listApprovals({ status: 'pending' })).length,
  });
  return approvals;
}

const EVENTS: Partial<Record<AuditRecordInput['type'], ApprovalEvent>> = {
  'approval.requested': 'requested',
  'approval.granted': 'approved',
  'approval.rejected': 'rejected',
  'approval.expired': 'expired',
  'approval.withdrawn': 'withdrawn',
};

/** A request, or a final decision (one approver of a request that needs two has not decided it yet). */
function observeApproval(metrics: GatewayMetrics, type: AuditRecordInput['type'], a: Approval): void {
  const event = EVENTS[type];
  if (!event || (event === 'approved' && a.status !== 'approved')) return;
  if (event !== 'approved' && event !== 'rejected') {
    metrics.approval(event);
    return;
  }
  const seconds = (Date.parse(a.decided_at ?? new Date().toISOString()) - Date.parse(a.created_at)) / 1000;
  metrics.approval(event, seconds >= 0 ? seconds : undefined);
}
