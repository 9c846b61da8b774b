/** The `approval_status` and `wait_for_approval` tools. */
import type { AccessRequestView, ApprovalView } from '../../src/shared/api.js';
import { approvalInfoOf, waitForDecision } from './approval-wait.js';
import { type CallContext, ok, type ToolDeps, ToolError, type ToolResult } from './context.js';
import { apiCall, runStatements } from './query-tool.js';
import type { QueryOutput, ToolInput } from './schemas.js';

const DEFAULT_WAIT_SECONDS = 50;

const normalise = (id: string | number) => String(id).replace(/^#/, '');

export function accessInfoOf(view: AccessRequestView) {
  return {
    id: view.id,
    status: view.status,
    connection: view.connection,
    policy: view.policy,
    reason: view.reason,
    duration: view.duration,
    created_at: view.created_at,
    ...(view.expires_at ? { expires_at: view.expires_at } : {}),
    active: view.active,
  };
}

export async function approvalStatusTool(
  deps: ToolDeps,
  ctx: CallContext,
  input: ToolInput<'approval_status'>,
): Promise<ToolResult> {
  const id = normalise(input.approval_id);
  const view = (await deps.api('GET', '/v1/approvals/:id', { ...apiCall(ctx), params: { id } })) as
    | ApprovalView
    | AccessRequestView;
  if (view.kind === 'access') {
    return ok(
      { access_request: accessInfoOf(view) },
      { connection: view.connection, outcome: { status: view.status, request_id: view.id } },
    );
  }
  return ok(
    { approval: approvalInfoOf(view) },
    { connection: view.connection, outcome: { status: view.status, approval_id: view.id } },
  );
}

export async function waitForApprovalTool(
  deps: ToolDeps,
  ctx: CallContext,
  input: ToolInput<'wait_for_approval'>,
): Promise<ToolResult> {
  const id = normalise(input.approval_id);
  if (id.startsWith('access-')) {
    throw new ToolError(
      'wait_for_approval waits for statement approvals; look at access requests with approval_status',
    );
  }
  const { view, waitedMs } = await waitForDecision(deps.api, apiCall(ctx), id, {
    timeoutMs: (input.timeout_seconds ?? DEFAULT_WAIT_SECONDS) * 1000,
    signal: ctx.signal,
    progress: ctx.progress,
  });
  const waited = Math.round(waitedMs / 100) / 10;
  const summary = { connection: view.connection, outcome: { status: view.status, approval_id: view.id } };
  if (view.status === 'approved' && input.run !== false) {
    // Run the very statement and values the reviewer approved, once, in a session opened for it.
    const run = await runStatements(deps, ctx, {
      connection: view.connection,
      statements: [view.statement],
      params: view.params ?? [],
      approval: view.id,
    });
    const query = run.structured as QueryOutput;
    const after = query.status === 'completed' ? 'used' : view.status;
    return {
      ...run,
      structured: {
        status: after,
        approval: { ...approvalInfoOf(view), status: after },
        waited_seconds: waited,
        query,
      },
    };
  }
  const refused = view.status === 'rejected' || view.status === 'expired' || view.status === 'withdrawn';
  const structured = { status: view.status, approval: approvalInfoOf(view), waited_seconds: waited };
  if (!refused) return ok(structured, summary);
  return {
    structured,
    isError: true,
    message: `approval #${view.id} was ${view.status}${view.outcome_reason ? `: ${view.outcome_reason}` : ''}`,
    summary: { ...summary, decision: 'approve' },
  };
}
