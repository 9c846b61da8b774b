/**
 * The `mcp.tool` record of a tool call (docs/audit.md): which tool, its arguments with secrets
 * redacted, the decision and a summary of the result — counts and statuses, never values. Pure.
 */
import type { AuditRecordInput } from '../../src/shared/audit.js';
import type { Identity } from '../../src/shared/identity.js';
import type { McpClientInfo } from '../../src/shared/mcp.js';
import type { CallSummary } from './context.js';

const SECRET_KEY = /secret|password|passwd|token|credential|api[_-]?key/i;
/** Scripts can be long; the statements' own records keep their full text. */
const MAX_TEXT = 16 * 1024;

/** Arguments as recorded: bound values never (they may be secrets), long text cut. */
export function redactArguments(args: unknown): unknown {
  if (typeof args !== 'object' || args === null || Array.isArray(args))
    return args === undefined ? {} : '[not an object]';
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) {
    if (key === 'params' && Array.isArray(value)) out.params = `[${value.length} value(s) redacted]`;
    else if (SECRET_KEY.test(key)) out[key] = '[redacted]';
    else if (typeof value === 'string' && value.length > MAX_TEXT) out[key] = `${value.slice(0, MAX_TEXT)}…`;
    else if (typeof value === 'object' && value !== null) out[key] = '[object]';
    else out[key] = value;
  }
  return out;
}

export interface ToolCallRecord {
  tool: string;
  args: unknown;
  identity: Identity;
  source: string;
  client: McpClientInfo;
  summary: Partial<CallSummary>;
  isError: boolean;
  durationMs: number;
}

export function toolRecord(call: ToolCallRecord): AuditRecordInput {
  const { summary } = call;
  return {
    type: 'mcp.tool',
    identity: call.identity,
    source: call.source,
    ...(summary.connection ? { connection: summary.connection } : {}),
    ...(summary.session ? { session: summary.session } : {}),
    data: {
      tool: call.tool,
      arguments: redactArguments(call.args),
      ...(summary.decision ? { decision: summary.decision } : {}),
      ...(summary.rule ? { rule: summary.rule } : {}),
      outcome: summary.outcome ?? {},
      error: call.isError || undefined,
      duration_ms: call.durationMs,
      mcp: {
        session: call.client.session,
        client: call.client.name,
        version: call.client.version,
        transport: call.client.transport,
      },
    },
  };
}
