/**
 * Waiting for a statement approval on behalf of an agent: read the request (through the approvals API,
 * so an agent sees only its own) until it is decided, the wait's time is up, or the call is cancelled;
 * report progress meanwhile. The approval's own expiry bounds the wait too: it is decided by then.
 */
import type { ApprovalView } from '../../src/shared/api.js';
import type { ApiCall, ApiCaller } from './api.js';
import type { ApprovalInfo } from './schemas.js';

export interface WaitOptions {
  timeoutMs: number;
  signal: AbortSignal;
  progress(progress: number, total: number | undefined, message: string): void;
  pollMs?: number;
  /** How often a progress notification goes out while waiting. */
  progressEveryMs?: number;
}

export function approvalView(api: ApiCaller, call: ApiCall, id: string): Promise<ApprovalView> {
  return api('GET', '/v1/approvals/:id', { ...call, params: { id } }) as Promise<ApprovalView>;
}

/** Wait while the request is pending; returns it as it stands when the wait ends. */
export async function waitForDecision(
  api: ApiCaller,
  call: ApiCall,
  id: string,
  options: WaitOptions,
): Promise<{ view: ApprovalView; waitedMs: number }> {
  const started = Date.now();
  const pollMs = options.pollMs ?? 500;
  const progressEvery = options.progressEveryMs ?? 5000;
  let lastProgress = Number.NEGATIVE_INFINITY;
  for (;;) {
    const view = await approvalView(api, call, id);
    const waited = Date.now() - started;
    const left = options.timeoutMs - waited;
    if (view.status !== 'pending' || left <= 0 || options.signal.aborted) return { view, waitedMs: waited };
    if (waited - lastProgress >= progressEvery) {
      lastProgress = waited;
      options.progress(
        Math.floor(waited / 1000),
        Math.ceil(options.timeoutMs / 1000),
        `waiting for approval #${view.id}: needs ${needsOf(view)} (expires ${view.expires_at})`,
      );
    }
    await sleep(Math.min(pollMs, left), options.signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export function needsOf(view: Pick<ApprovalView, 'approvers' | 'approvals_required'>): string {
  const n = view.approvals_required;
  return `${n} approver${n === 1 ? '' : 's'} from ${view.approvers.join(', ') || '(none named)'}`;
}

/** The approvals API's view, in the tools' output shape. */
export function approvalInfoOf(view: ApprovalView): ApprovalInfo {
  return {
    id: view.id,
    status: view.status,
    connection: view.connection,
    statement: view.statement,
    ...(view.params ? { params: view.params } : {}),
    rule: view.rule,
    policy: view.policy,
    approvers: view.approvers,
    approvals_required: view.approvals_required,
    approvals: view.decisions.filter((d) => d.decision === 'approve').length,
    decisions: view.decisions.map((d) => ({
      subject: d.subject,
      ...(d.name ? { name: d.name } : {}),
      decision: d.decision,
      ...(d.comment ? { comment: d.comment } : {}),
      time: d.time,
    })),
    created_at: view.created_at,
    expires_at: view.expires_at,
    ...(view.decided_at ? { decided_at: view.decided_at } : {}),
    ...(view.used_at ? { used_at: view.used_at } : {}),
    ...(view.outcome_reason ? { outcome_reason: view.outcome_reason } : {}),
  };
}
