/** What every tool handler receives and returns (gateway/mcp). */
import type { ConnectionConfig, McpConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import type { AgentGuardrails } from '../policy/agents.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { ApiCaller } from './api.js';
import type { RowBudget } from './budget.js';
import type { DatabaseSessions } from './db-sessions.js';

/** The gateway's parts the tools use; main.ts provides them. */
export interface ToolDeps {
  mcp: McpConfig;
  engine: PolicyEngine;
  api: ApiCaller;
  budget: RowBudget;
  /** May this identity open a session on this connection (the tunnel's own check)? */
  canReach(identity: Identity, connection: string): boolean;
  /** Time-boxed grants in force for this identity on this connection (policy names). */
  grants(identity: Identity, connection: string): string[];
}

/** One tool call: who asks (verified for this very request), and the MCP session it belongs to. */
export interface CallContext {
  identity: Identity;
  source: string;
  signal: AbortSignal;
  /** The connection this MCP session is pinned to (x-hoop-mcp-connection), if any. */
  pinned?: string;
  sessions: DatabaseSessions;
  /** Report progress (MCP notifications/progress) when the client asked for it. */
  progress(progress: number, total: number | undefined, message: string): void;
}

/** What a call did, for its `mcp.tool` record. */
export interface CallSummary {
  connection?: string;
  /** The gateway session the call's statements ran in. */
  session?: string;
  /** The policy decision, where the call asked for one: allow | deny | approve. */
  decision?: string;
  rule?: string;
  /** completed, pending_approval, denied, error ... and counts: never values. */
  outcome: Record<string, unknown>;
}

export interface ToolResult {
  /** structuredContent (matches the tool's output schema); absent on some errors. */
  structured?: Record<string, unknown>;
  /** A line for the model when the call failed. */
  message?: string;
  isError: boolean;
  summary: CallSummary;
}

/** A refusal a tool reports to the model as a tool error (never a protocol error). */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly summary: Partial<CallSummary> = {},
  ) {
    super(message);
  }
}

export function ok(structured: Record<string, unknown>, summary: CallSummary): ToolResult {
  return { structured, isError: false, summary };
}

/** The connection a call names (or the pinned one), if this identity may reach it. */
export function resolveConnection(
  deps: ToolDeps,
  ctx: CallContext,
  requested: string | undefined,
): ConnectionConfig {
  const name = requested ?? ctx.pinned;
  if (!name) throw new ToolError('name a connection (the connections tool lists yours)');
  if (ctx.pinned && name !== ctx.pinned) {
    throw new ToolError(`this session is pinned to connection "${ctx.pinned}"`, { connection: name });
  }
  const connection = deps.engine.connection(name);
  // The same answer whether it does not exist or is not yours: names are not disclosed.
  if (!connection || !deps.canReach(ctx.identity, name)) {
    throw new ToolError(
      `no connection "${name}" for ${ctx.identity.subject} (the connections tool lists yours)`,
      {
        connection: name,
      },
    );
  }
  return connection;
}

/** Per-call limits: the agent's own, else the MCP defaults. */
export function limitsFor(mcp: McpConfig, agent: AgentGuardrails | undefined) {
  return { maxRows: agent?.maxRows ?? mcp.max_rows, maxBytes: agent?.maxBytes ?? mcp.max_bytes };
}

export const identityKey = (identity: Identity) => `${identity.issuer}\0${identity.subject}`;
