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
  /** Which CLI command opened the tunnel (connect | exec), `mcp`, or `native` (the PostgreSQL listener). */
  client: string;
  /** exec --approval ID: the approval request this session came to run. */
  approval?: string;
  /** x-hoop-approval-wait: how long the client waits for approvals (ms), or `none` (exec --no-wait). */
  approvalWait?: string;
  /** A session an MCP client opened (gateway/mcp): who that client said it is. */
  mcp?: McpClientInfo;
  /** application_name from the client's startup packet, when it sent one. */
  applicationName?: string;
  /** A session of the native PostgreSQL listener: the login's user name (free text, as the client sent it). */
  nativeUser?: string;
  startedAt: number;
  /** The startup parameters applied upstream (the client's as judged, and the gateway's held ones), for the record. */
  parameters?: Record<string, string>;
}

/**
 * A client handshake a listener already completed (the native listener checks the client's token in
 * it): the settings the client asked for, the startup packet as sent, and the bytes read past it.
 */
export interface ClientLogin {
  /** Every setting the client asked for, in order (session/startup.ts startupSettings); judged like SET. */
  settings: { name: string; value: string }[];
  startup: Record<string, string>;
  leftover: Buffer;
  /** What the client sent after the handshake, while the upstream was being opened: the relay takes it. */
  late?: () => Buffer;
}
