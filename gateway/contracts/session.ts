/**
 * Who a session is, shared by the stages that judge its statements (the gate, approvals, masking).
 * A leaf module: it imports no stage, so no stage has to import `session/` to name a session.
 */
import type { ConnectionConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import type { McpClientInfo } from '../../src/shared/mcp.js';

export interface SessionInfo {
  id: string;
  identity: Identity;
  connection: ConnectionConfig;
  source: string;
  /** Which CLI command opened the tunnel (connect | exec). */
  client: string;
  /** exec --approval ID: the approval request this session came to run. */
  approval?: string;
  /** x-hoop-approval-wait: how long the client waits for approvals (ms), or `none` (exec --no-wait). */
  approvalWait?: string;
  /** A session an MCP client opened (gateway/mcp): who that client said it is. */
  mcp?: McpClientInfo;
  startedAt: number;
  /** The startup parameters applied upstream (the client's as judged, and the gateway's held ones), for the record. */
  parameters?: Record<string, string>;
}
