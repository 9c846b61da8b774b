/**
 * Guardrails for AI agents (config `agents[]`, docs/agents.md): identities matched as agents by kind,
 * group or subject get stricter decisions on top of their policies, wherever they connect. Pure.
 *
 * - Agents never change session settings (SET, RESET, DISCARD, set_config()): the gateway sets the
 *   statement timeout upstream and an agent must not lift it.
 * - `read_only` (the default): what a policy would simply allow runs only when it is a read or
 *   transaction control; anything else runs only through a rule that requires approval, so a person
 *   signs off on every change an agent makes.
 */
import type { AgentConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import type { ClassifiedStatement, Decision, StatementClass } from '../../src/shared/statement.js';
import { bareName } from '../sql/side-channels.js';

export interface AgentGuardrails {
  /** The `agents[]` entry's name. */
  name: string;
  readOnly: boolean;
  /** statement_timeout set on the upstream session, in ms (0 = none). */
  statementTimeoutMs: number;
  /** Per `query` tool call; undefined = the mcp defaults. */
  maxRows?: number;
  maxBytes?: number;
  /** Rows per hour through MCP (0 = no budget). */
  rowsPerHour: number;
  mcpOnly: boolean;
}

/** What a read-only agent may run without an approval. */
const READ_ONLY_CLASSES: ReadonlySet<StatementClass> = new Set(['read', 'transaction']);

export const AGENT_SETTINGS_RULE = 'agent-settings';
export const AGENT_READ_ONLY_RULE = 'agent-read-only';

/** Which agent profile (if any) an identity falls under: the first entry that matches. */
export function compileAgents(
  entries: readonly AgentConfig[],
): (identity: Identity) => AgentGuardrails | undefined {
  const compiled = entries.map((entry) => ({
    kinds: new Set<string>(entry.kinds),
    groups: new Set(entry.groups),
    subjects: new Set(entry.subjects),
    guardrails: {
      name: entry.name,
      readOnly: entry.read_only,
      statementTimeoutMs: entry.statement_timeout,
      maxRows: entry.max_rows,
      maxBytes: entry.max_bytes,
      rowsPerHour: entry.rows_per_hour,
      mcpOnly: entry.mcp_only,
    } satisfies AgentGuardrails,
  }));
  return (identity) =>
    compiled.find(
      (c) =>
        c.kinds.has(identity.kind) ||
        c.subjects.has(identity.subject) ||
        identity.groups.some((g) => c.groups.has(g)),
    )?.guardrails;
}

/** The decision for an agent's statement: the policy's, made stricter by the guardrails. */
export function guardAgentDecision(
  decision: Decision,
  stmt: ClassifiedStatement,
  agent: AgentGuardrails,
): Decision {
  if (decision.action === 'deny') return decision;
  const setsConfig = stmt.functions.some((f) => bareName(f) === 'set_config');
  if (stmt.class === 'session' || setsConfig) {
    return {
      action: 'deny',
      policy: null,
      rule: AGENT_SETTINGS_RULE,
      reason: `agent profile "${agent.name}": agents cannot change session settings (${setsConfig ? 'set_config' : stmt.kind}); the gateway sets them`,
    };
  }
  if (agent.readOnly && decision.action === 'allow' && !READ_ONLY_CLASSES.has(stmt.class)) {
    return {
      action: 'deny',
      policy: null,
      rule: AGENT_READ_ONLY_RULE,
      reason: `agent profile "${agent.name}" is read-only: ${stmt.class} statements run only through a rule that requires approval`,
    };
  }
  return decision;
}

/** The startup parameters the gateway sets on an agent's upstream session. */
export function agentStartupParameters(agent: AgentGuardrails | undefined): Record<string, string> {
  if (!agent || agent.statementTimeoutMs <= 0) return {};
  return { statement_timeout: String(agent.statementTimeoutMs) };
}
