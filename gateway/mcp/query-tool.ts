/**
 * The `query` tool: SQL through this MCP session's gateway session, statement by statement (as
 * `hoopctl exec` runs a script), within the per-call row/byte limits and the agent's hourly budget.
 * The gateway session decides everything (policy, approvals, masking, the record); this module only
 * turns its answers into something a model can act on.
 */
import { splitSqlScript } from '../../src/shared/sql-split.js';
import type { ApiCall } from './api.js';
import { approvalInfoOf, approvalView, waitForDecision } from './approval-wait.js';
import {
  type CallContext,
  identityKey,
  limitsFor,
  resolveConnection,
  type ToolDeps,
  ToolError,
  type ToolResult,
} from './context.js';
import type { DatabaseSession } from './db-sessions.js';
import type { RunLimits, ServerMessage, StatementResult } from './pg-client.js';
import { SessionClosed } from './pg-client.js';
import type { BudgetInfo, ErrorInfo, QueryOutput, ToolInput } from './schemas.js';

type QueryStatus = QueryOutput['status'];

interface Execution {
  results: QueryOutput['results'];
  failure?: { error: ServerMessage; statement: string };
  notices: string[];
  rows: number;
}

/** What the gateway's refusal means for the agent, from its stable `routine` code. */
function statusOf(error: ServerMessage): { status: QueryStatus; decision?: string } {
  switch (error.routine) {
    case 'hoop_approval_pending':
      return { status: 'pending_approval', decision: 'approve' };
    case 'hoop_policy_denied':
    case 'hoop_approval_required':
    case 'hoop_approval_invalid':
    case 'hoop_revoked':
      return { status: 'denied', decision: 'deny' };
    case 'hoop_approval_rejected':
      return { status: 'rejected', decision: 'approve' };
    case 'hoop_approval_expired':
      return { status: 'expired', decision: 'approve' };
    case 'hoop_approval_withdrawn':
      return { status: 'withdrawn', decision: 'approve' };
    default:
      return { status: 'error' };
  }
}

export function errorInfoOf(error: ServerMessage, statement?: string): ErrorInfo {
  const rule = /rule "([^"]+)"/.exec(error.message)?.[1];
  const policy = /policy "([^"]+)"/.exec(error.message)?.[1];
  return {
    sqlstate: error.code,
    message: error.message,
    ...(error.detail ? { detail: error.detail } : {}),
    ...(error.hint ? { hint: error.hint } : {}),
    ...(error.routine ? { routine: error.routine } : {}),
    ...(rule ? { rule } : {}),
    ...(policy ? { policy } : {}),
    ...(statement ? { statement } : {}),
  };
}

function resultSet(statement: string, r: StatementResult): QueryOutput['results'][number] {
  return {
    statement,
    command: r.command,
    columns: r.columns,
    rows: r.rows,
    row_count: r.rows.length,
    truncated: r.truncated,
  };
}

/** Run statements one at a time in the session; the call's cancellation cancels the running one. */
async function execute(
  session: DatabaseSession,
  statements: readonly string[],
  params: readonly (string | null)[],
  limits: RunLimits,
  signal: AbortSignal,
): Promise<Execution> {
  return session.exclusive(async (client) => {
    const execution: Execution = { results: [], notices: [], rows: 0 };
    const onAbort = () => session.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      let bytes = 0;
      for (const statement of statements) {
        const outcome = await client.run(statement, params, {
          maxRows: Math.max(0, limits.maxRows - execution.rows),
          maxBytes: Math.max(0, limits.maxBytes - bytes),
        });
        execution.notices.push(...outcome.notices.map((n) => n.message));
        if (!outcome.ok) {
          execution.failure = { error: outcome.error, statement };
          break;
        }
        execution.results.push(resultSet(statement, outcome.result));
        execution.rows += outcome.result.rows.length;
        bytes += outcome.result.bytes;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return execution;
  });
}

function toText(value: string | number | boolean | null): string | null {
  return value === null ? null : String(value);
}

/** Budget and limits for this identity's call. */
function planLimits(deps: ToolDeps, ctx: CallContext, requestedRows: number | undefined) {
  const agent = deps.engine.agentFor(ctx.identity);
  const limits = limitsFor(deps.mcp, agent);
  let maxRows = Math.min(limits.maxRows, requestedRows ?? Number.POSITIVE_INFINITY);
  let budget: BudgetInfo | undefined;
  const key = identityKey(ctx.identity);
  if (agent && agent.rowsPerHour > 0) {
    const remaining = deps.budget.remaining(key, agent.rowsPerHour);
    if (remaining <= 0) {
      const refills = deps.budget.refillsAt(key)?.toISOString();
      throw new ToolError(
        `agent profile "${agent.name}" has used its ${agent.rowsPerHour} rows this hour${refills ? `; more from ${refills}` : ''}`,
        { decision: 'deny', rule: 'agent-budget', outcome: { status: 'denied', budget_exhausted: true } },
      );
    }
    maxRows = Math.min(maxRows, remaining);
    budget = { rows_per_hour: agent.rowsPerHour, remaining };
  }
  return { limits: { maxRows, maxBytes: limits.maxBytes }, budget, agent, key };
}

export interface RunRequest {
  connection?: string;
  statements: string[];
  params: (string | null)[];
  maxRows?: number;
  /** Run in a session opened for this approval (its statement, once). */
  approval?: string;
}

/** Run SQL and describe the outcome; the shared core of `query` and `wait_for_approval`. */
export async function runStatements(
  deps: ToolDeps,
  ctx: CallContext,
  request: RunRequest,
): Promise<ToolResult> {
  const connection = resolveConnection(deps, ctx, request.connection);
  const plan = planLimits(deps, ctx, request.maxRows);
  let session: DatabaseSession | undefined;
  let execution: Execution;
  try {
    session = request.approval
      ? await ctx.sessions.forApproval(connection, request.approval)
      : await ctx.sessions.get(connection);
    execution = await execute(session, request.statements, request.params, plan.limits, ctx.signal);
  } catch (err) {
    if (!(err instanceof SessionClosed)) throw err;
    const error = err.fatal ? errorInfoOf(err.fatal) : undefined;
    throw new ToolError(`the gateway session on "${connection.name}" ended: ${err.message}`, {
      connection: connection.name,
      outcome: { status: 'error', ...(error ? { sqlstate: error.sqlstate } : {}) },
    });
  } finally {
    // A session opened for one approval has done its one statement.
    if (request.approval) session?.end();
  }
  if (plan.agent && plan.budget) {
    deps.budget.spend(plan.key, execution.rows);
    plan.budget.remaining = Math.max(0, plan.budget.remaining - execution.rows);
  }
  return describe(deps, ctx, connection.name, session.id, execution, plan.budget);
}

async function describe(
  deps: ToolDeps,
  ctx: CallContext,
  connection: string,
  session: string,
  execution: Execution,
  budget: BudgetInfo | undefined,
): Promise<ToolResult> {
  const failure = execution.failure;
  const { status, decision } = failure ? statusOf(failure.error) : { status: 'completed' as const };
  const output: QueryOutput = {
    status,
    connection,
    session,
    results: execution.results,
    truncated: execution.results.some((r) => r.truncated),
    ...(execution.notices.length ? { notices: execution.notices } : {}),
    ...(budget ? { budget } : {}),
  };
  const error = failure ? errorInfoOf(failure.error, failure.statement) : undefined;
  if (status === 'pending_approval') {
    const id = /#(\d+)/.exec(failure!.error.message)?.[1];
    if (id) output.approval = approvalInfoOf(await approvalView(deps.api, apiCall(ctx), id));
  } else if (error) output.error = error;
  return {
    structured: output,
    isError: status !== 'completed' && status !== 'pending_approval',
    ...(error && status !== 'pending_approval'
      ? {
          message: `${error.message}${error.detail ? ` (${error.detail})` : ''} [SQLSTATE ${error.sqlstate}]`,
        }
      : {}),
    summary: {
      connection,
      session,
      decision: decision ?? (status === 'completed' ? 'allow' : undefined),
      ...(error?.rule ? { rule: error.rule } : {}),
      outcome: {
        status,
        statements: execution.results.length + (failure ? 1 : 0),
        rows: execution.rows,
        truncated: output.truncated || undefined,
        ...(output.approval ? { approval_id: output.approval.id } : {}),
        ...(error ? { sqlstate: error.sqlstate } : {}),
      },
    },
  };
}

export const apiCall = (ctx: CallContext): ApiCall => ({ identity: ctx.identity, source: ctx.source });

/** The `query` tool. */
export async function queryTool(
  deps: ToolDeps,
  ctx: CallContext,
  input: ToolInput<'query'>,
): Promise<ToolResult> {
  const params = (input.params ?? []).map(toText);
  // Bound values go with one statement; a script is split by the real parser and run one by one.
  const statements = params.length > 0 ? [input.sql] : await splitSqlScript(input.sql);
  if (statements.length === 0) throw new ToolError('no SQL statements to run');
  const approval = input.approval_id === undefined ? undefined : String(input.approval_id).replace(/^#/, '');
  if (approval && statements.length > 1) {
    throw new ToolError('an approval runs the one statement it was filed for: send that statement alone');
  }
  const result = await runStatements(deps, ctx, {
    connection: input.connection,
    statements,
    params,
    maxRows: input.max_rows,
    approval,
  });
  const output = result.structured as QueryOutput | undefined;
  if (output?.status !== 'pending_approval' || !output.approval || !input.wait_seconds) return result;
  // Asked to wait a little: wait, and run the statement if it was approved meanwhile.
  const { view } = await waitForDecision(deps.api, apiCall(ctx), output.approval.id, {
    timeoutMs: input.wait_seconds * 1000,
    signal: ctx.signal,
    progress: ctx.progress,
  });
  if (view.status !== 'approved')
    return { ...result, structured: { ...output, approval: approvalInfoOf(view) } };
  return runStatements(deps, ctx, {
    connection: view.connection,
    statements: [view.statement],
    params: view.params ?? [],
    approval: view.id,
  });
}
