/**
 * The MCP surface's fixed names (docs/agents.md), shared by the gateway's `/mcp` and the stdio proxy
 * `hoopctl mcp`, so both present the same server to an agent host.
 */

/** Streamable HTTP endpoint on the gateway's main listener. */
export const MCP_PATH = '/mcp';

/** OAuth 2.0 Protected Resource Metadata (RFC 9728). */
export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';

/** Request headers an MCP client may send besides Authorization and the protocol's own. */
export const MCP_HEADERS = {
  /** Pin the session to one connection: the tools' `connection` argument defaults to it and may name no other. */
  connection: 'x-hoop-mcp-connection',
  /** `stdio` when `hoopctl mcp` bridges a local host to /mcp (recorded with the session). */
  transport: 'x-hoop-mcp-transport',
} as const;

/** Tool names: stable, documented in docs/agents.md. */
export const MCP_TOOLS = {
  connections: 'connections',
  schema: 'schema',
  query: 'query',
  explain: 'explain',
  approvalStatus: 'approval_status',
  waitForApproval: 'wait_for_approval',
  requestAccess: 'request_access',
} as const;

export const MCP_SERVER_NAME = 'hoopctl';

/** What the server tells the model about itself (the initialize result's `instructions`). */
export const MCP_INSTRUCTIONS = `PostgreSQL through a hoop gateway, as your own identity. Every statement is checked by policy,
masked where a rule says so, and recorded; you get nothing a person with your identity would not.
Start with "connections" (what you may reach and the rules) and "schema" (tables, columns, which
columns are masked for you). Run SQL with "query" (use params for values). Use "explain" to learn,
without running anything, whether a statement would be allowed, denied or need approval and by whom.
A statement that needs approval returns status "pending_approval" with an approval id: call
"wait_for_approval" with that id (it runs the statement once a reviewer approves), or
"approval_status" to look without waiting. A denied statement is an error naming the rule; change the
statement rather than retrying it. "request_access" asks for time-boxed access to a requestable policy.`;

/** The MCP client behind a gateway session: name and version from its initialize request, recorded with the session. */
export interface McpClientInfo {
  name: string;
  version: string;
  /** The MCP session id (Mcp-Session-Id). */
  session: string;
  /** `http`: straight to /mcp; `stdio`: through `hoopctl mcp`. */
  transport: 'http' | 'stdio';
}
