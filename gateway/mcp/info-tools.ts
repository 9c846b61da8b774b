/** The `connections`, `schema`, `explain` and `request_access` tools. */
import type { AccessRequestView, ConnectionView } from '../../src/shared/api.js';
import { formatDuration } from '../../src/shared/duration.js';
import type { PolicyExplanation } from '../../src/shared/policy-explain.js';
import { resolveMaskRules } from '../masking/rules.js';
import { AGENT_READ_ONLY_RULE, AGENT_SETTINGS_RULE } from '../policy/agents.js';
import { accessInfoOf } from './approval-tools.js';
import { needsOf } from './approval-wait.js';
import {
  type CallContext,
  identityKey,
  limitsFor,
  ok,
  resolveConnection,
  type ToolDeps,
  ToolError,
  type ToolResult,
} from './context.js';
import { apiCall, errorInfoOf } from './query-tool.js';
import type { ToolInput, ToolOutput } from './schemas.js';

export async function connectionsTool(deps: ToolDeps, ctx: CallContext): Promise<ToolResult> {
  const views = (await deps.api('GET', '/v1/connections', apiCall(ctx))) as ConnectionView[];
  const agent = deps.engine.agentFor(ctx.identity);
  const limits = limitsFor(deps.mcp, agent);
  const output: ToolOutput<'connections'> = {
    connections: views
      .filter((v) => !ctx.pinned || v.name === ctx.pinned)
      .map((v) => ({
        name: v.name,
        ...(v.description ? { description: v.description } : {}),
        database: v.database,
        policies: v.policies,
        requestable: v.requestable.map((p) => ({ name: p.name, max_duration: p.max_duration })),
      })),
    limits: { max_rows: limits.maxRows, max_bytes: limits.maxBytes },
  };
  if (agent) {
    output.agent = {
      name: agent.name,
      read_only: agent.readOnly,
      statement_timeout_ms: agent.statementTimeoutMs,
      rows_per_hour: agent.rowsPerHour,
      mcp_only: agent.mcpOnly,
    };
    if (agent.rowsPerHour > 0) {
      const key = identityKey(ctx.identity);
      const refills = deps.budget.refillsAt(key);
      output.budget = {
        rows_per_hour: agent.rowsPerHour,
        remaining: deps.budget.remaining(key, agent.rowsPerHour),
        ...(refills ? { refills_at: refills.toISOString() } : {}),
      };
    }
  }
  return ok(output, { outcome: { status: 'completed', connections: output.connections.length } });
}

/** Tables and columns from the catalog, read through the caller's own gateway session. */
const CATALOG_SQL = `SELECT n.nspname, c.relname, c.relkind::text, a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod), (NOT a.attnotnull)::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
   AND ($1::text IS NULL OR n.nspname = $1::text)
   AND ($2::text IS NULL OR c.relname = $2::text)
 ORDER BY n.nspname, c.relname, a.attnum`;

const KINDS: Record<string, string> = {
  r: 'table',
  p: 'partitioned table',
  v: 'view',
  m: 'materialized view',
  f: 'foreign table',
};

const SCHEMA_MAX_COLUMNS = 5000;

export async function schemaTool(
  deps: ToolDeps,
  ctx: CallContext,
  input: ToolInput<'schema'>,
): Promise<ToolResult> {
  const connection = resolveConnection(deps, ctx, input.connection);
  const session = await ctx.sessions.get(connection);
  const outcome = await session.exclusive((client) =>
    client.run(CATALOG_SQL, [input.schema ?? null, input.table ?? null], {
      maxRows: SCHEMA_MAX_COLUMNS,
      maxBytes: 16 * 1024 * 1024,
    }),
  );
  if (!outcome.ok) {
    const error = errorInfoOf(outcome.error);
    throw new ToolError(`the catalog could not be read through the gateway: ${error.message}`, {
      connection: connection.name,
      session: session.id,
      ...(error.rule ? { decision: 'deny', rule: error.rule } : {}),
      outcome: { status: 'error', sqlstate: error.sqlstate },
    });
  }
  // Which columns this identity sees masked: the same rules the session's masking applies.
  const rules = resolveMaskRules(
    deps.engine.policiesFor(ctx.identity, connection.name, deps.grants(ctx.identity, connection.name)),
    null,
  );
  const tables: ToolOutput<'schema'>['tables'] = [];
  for (const [schema, table, kind, column, type, nullable] of outcome.result.rows) {
    let last = tables[tables.length - 1];
    if (!last || last.schema !== schema || last.name !== table) {
      last = { schema: schema ?? '', name: table ?? '', kind: KINDS[kind ?? ''] ?? kind ?? '', columns: [] };
      tables.push(last);
    }
    const rule = rules.column(`${schema}.${table}.${column}`.toLowerCase());
    last.columns.push({
      name: column ?? '',
      type: type ?? '',
      nullable: nullable === 'true',
      masked: rule !== undefined,
      ...(rule ? { mask: rule.mask, rule: rule.rule } : {}),
    });
  }
  const output: ToolOutput<'schema'> = {
    connection: connection.name,
    tables,
    truncated: outcome.result.truncated,
    value_detectors: [...rules.tags].map(([tag, m]) => ({ tag, mask: m.mask })),
  };
  const masked = tables.reduce((n, t) => n + t.columns.filter((c) => c.masked).length, 0);
  return ok(output, {
    connection: connection.name,
    session: session.id,
    decision: 'allow',
    outcome: { status: 'completed', tables: tables.length, masked_columns: masked },
  });
}

/** What it would take to run a statement the policy does not simply allow. */
function needsFor(x: PolicyExplanation): string | undefined {
  if (x.decision === 'approve') {
    const timeout = x.timeoutMs ? `; the request waits up to ${formatDuration(x.timeoutMs)}` : '';
    return `approval by ${needsOf({ approvers: x.approvers ?? [], approvals_required: x.approvalsRequired ?? 1 })}${timeout}: query answers pending_approval with an id, then call wait_for_approval`;
  }
  if (x.decision === 'allow') return undefined;
  switch (x.rule) {
    case 'default-deny':
      return 'a policy with a rule that allows (or requires approval for) this kind of statement on this connection: ask an administrator, or request_access to a requestable policy';
    case AGENT_READ_ONLY_RULE:
      return 'agents are read-only here: only a rule that requires approval lets this run';
    case AGENT_SETTINGS_RULE:
      return 'nothing: agents cannot change session settings';
    case 'unparseable':
    case 'unplaceable':
      return 'SQL the gateway can parse and classify';
    default:
      return `a different statement: rule "${x.rule}" denies this one`;
  }
}

export async function explainTool(
  deps: ToolDeps,
  ctx: CallContext,
  input: ToolInput<'explain'>,
): Promise<ToolResult> {
  const connection = resolveConnection(deps, ctx, input.connection);
  const x = (await deps.api('POST', '/v1/policy/test', {
    ...apiCall(ctx),
    body: { connection: connection.name, sql: input.sql },
  })) as PolicyExplanation;
  const needs = needsFor(x);
  const output: ToolOutput<'explain'> = {
    connection: connection.name,
    decision: x.decision,
    rule: x.rule,
    policy: x.policy,
    reason: x.reason,
    ...(needs ? { needs } : {}),
    ...(x.approvers ? { approvers: x.approvers } : {}),
    ...(x.approvalsRequired !== undefined ? { approvals_required: x.approvalsRequired } : {}),
    statements: x.statements.map((s) => ({
      text: s.text,
      class: s.class,
      kind: s.kind,
      relations: s.relations,
      functions: s.functions,
      decision: s.decision,
      rule: s.rule,
      policy: s.policy,
      reason: s.reason,
    })),
    ...(x.parseError ? { parse_error: x.parseError } : {}),
  };
  return ok(output, {
    connection: connection.name,
    decision: x.decision,
    rule: x.rule,
    outcome: { status: 'explained', statements: x.statements.length },
  });
}

export async function requestAccessTool(
  deps: ToolDeps,
  ctx: CallContext,
  input: ToolInput<'request_access'>,
): Promise<ToolResult> {
  const name = input.connection ?? ctx.pinned;
  if (!name) throw new ToolError('name a connection');
  if (ctx.pinned && name !== ctx.pinned)
    throw new ToolError(`this session is pinned to connection "${ctx.pinned}"`);
  const view = (await deps.api('POST', '/v1/access-requests', {
    ...apiCall(ctx),
    body: { connection: name, policy: input.policy, duration: input.duration, reason: input.reason },
  })) as AccessRequestView;
  return ok(
    { request: accessInfoOf(view) },
    { connection: name, outcome: { status: view.status, request_id: view.id, policy: view.policy } },
  );
}
