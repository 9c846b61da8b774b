/**
 * The MCP server (gateway/mcp) at /mcp: its tools run in ordinary gateway sessions opened through the
 * tunnels' own hook, so an agent gets exactly the gate, approvals, masking and records a tunnel gets.
 */
import type { ApprovalService } from '../approvals/service.js';
import { apiCaller } from '../mcp/api.js';
import { RowBudget } from '../mcp/budget.js';
import { createMcpEndpoint } from '../mcp/http.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { Route } from '../transport/router.js';
import type { AuditParts } from './audit.js';
import type { GatewayContext } from './context.js';
import type { IdentityParts } from './identity.js';
import type { Tunnels } from './sessions.js';

export interface McpParts {
  routes: Route[];
}

export function buildMcp(
  ctx: GatewayContext,
  deps: {
    engine: PolicyEngine;
    audit: AuditParts;
    approvals: ApprovalService;
    identity: IdentityParts;
    tunnels: Tunnels;
    /** The API's routes (read when a tool calls one, after they are all built). */
    routes: () => readonly Route[];
  },
): McpParts | undefined {
  const { config, logger } = ctx;
  if (!config.mcp.enabled) return undefined;
  const { engine, approvals } = deps;
  const endpoint = createMcpEndpoint({
    config,
    mcp: config.mcp,
    engine,
    version: ctx.version,
    log: deps.audit.log,
    authenticate: deps.identity.authenticate,
    openSession: deps.tunnels.openSession,
    canReach: (identity, name) =>
      engine.policiesFor(identity, name, approvals.grantsFor(identity, name)).length > 0,
    grants: (identity, name) => approvals.grantsFor(identity, name),
    api: apiCaller(deps.routes),
    budget: new RowBudget(),
    onError: (err) => logger.error({ err: err.message }, 'mcp tool failed'),
  });
  ctx.services.add('mcp', () => endpoint.close());
  return { routes: endpoint.routes };
}
