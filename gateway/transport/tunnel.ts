/**
 * The tunnel endpoint: `GET /v1/tunnel/<connection>` upgraded to a WebSocket whose binary messages
 * carry the Postgres protocol byte stream of one client connection. The bearer token was verified
 * before the upgrade (http.ts); here we check the connection is one this identity may reach.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { TUNNEL_HEADERS, TUNNEL_PATH } from '../../src/shared/api.js';
import type { ConnectionConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import type { McpClientInfo } from '../../src/shared/mcp.js';
import type { ClientLogin } from '../contracts/session.js';
import type { PendingLogin, UpgradeHandler } from './http.js';
import { sourceOf } from './http.js';
import { webSocketStream } from './ws-stream.js';

export interface TunnelTarget {
  identity: Identity;
  connection: ConnectionConfig;
  source: string;
  client: string;
  localPassword?: string;
  /** The session's id, announced to the client in the upgrade response. */
  sessionId: string;
  /** exec --approval ID. */
  approval?: string;
  /** x-hoop-approval-wait: ms, or `none` (exec --no-wait). */
  approvalWait?: string;
  /** Set by the MCP server for the sessions it opens (never from a tunnel's headers). */
  mcp?: McpClientInfo;
  /** Set by the native PostgreSQL listener: the handshake it did (token checked) and the login's user. */
  login?: ClientLogin;
  nativeUser?: string;
  /** A tunnel not yet logged in (transport/pre-auth.ts): its startup's deadline, and the call once done. */
  pending?: PendingLogin;
}

export interface TunnelOptions {
  connections: Map<string, ConnectionConfig>;
  /** May this identity open a session on this connection at all? */
  canReach(identity: Identity, connection: string): boolean;
  /** Why this identity may open no tunnel at all (an agent kept to /mcp), if it may not. */
  barred?(identity: Identity): string | undefined;
  /** A refused tunnel (unknown connection, no policy): recorded as auth.failed. */
  refused(identity: Identity, source: string, connection: string, reason: string): void;
  onStream(stream: Duplex, target: TunnelTarget): void;
  maxMessageBytes: number;
}

export function createTunnelHandler(options: TunnelOptions): { handler: UpgradeHandler; close(): void } {
  const wss = new WebSocketServer({
    noServer: true,
    // One Postgres message may be up to the configured cap; a WebSocket message carries at most one chunk of it.
    maxPayload: Math.max(options.maxMessageBytes, 1 << 20) + 1024,
    perMessageDeflate: false,
  });

  // Tell the client its session id in the upgrade response (hoopctl exec prints it for the audit trail).
  const pendingIds = new WeakMap<IncomingMessage, string>();
  wss.on('headers', (headers, request) => {
    const id = pendingIds.get(request);
    if (id) headers.push(`${TUNNEL_HEADERS.session}: ${id}`);
  });

  const handler: UpgradeHandler = (
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    identity: Identity,
    pending?: PendingLogin,
  ) => {
    const url = new URL(request.url ?? '/', 'http://gateway');
    const refuse = (status: number, message: string) => {
      const body = JSON.stringify({ error: { code: status === 404 ? 'not_found' : 'forbidden', message } });
      socket.end(
        `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Forbidden'}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    if (!url.pathname.startsWith(TUNNEL_PATH)) {
      refuse(404, `no such endpoint: ${url.pathname}`);
      return;
    }
    let name: string;
    try {
      name = decodeURIComponent(url.pathname.slice(TUNNEL_PATH.length));
    } catch {
      refuse(404, `no such endpoint: ${url.pathname}`); // malformed percent-encoding: no connection has that name
      return;
    }
    const source = sourceOf(request);
    const connection = options.connections.get(name);
    const barred = options.barred?.(identity);
    if (barred) {
      options.refused(identity, source, name, barred);
      refuse(403, barred);
      return;
    }
    if (!connection || !options.canReach(identity, name)) {
      // The same answer whether it does not exist or is not yours: names are not disclosed.
      const reason = `no connection "${name}" for ${identity.subject}`;
      options.refused(identity, source, name, reason);
      refuse(404, `${reason} (see: hoopctl connections)`);
      return;
    }
    const localPassword = request.headers[TUNNEL_HEADERS.localPassword];
    const client = request.headers[TUNNEL_HEADERS.client];
    const approval = request.headers[TUNNEL_HEADERS.approval];
    const approvalWait = request.headers[TUNNEL_HEADERS.approvalWait];
    const sessionId = randomUUID();
    pendingIds.set(request, sessionId);
    wss.handleUpgrade(request, socket, head, (ws) => {
      const stream = webSocketStream(ws);
      stream.on('error', () => stream.destroy());
      options.onStream(stream, {
        identity,
        connection,
        source,
        client: typeof client === 'string' ? client : 'unknown',
        localPassword: typeof localPassword === 'string' && localPassword ? localPassword : undefined,
        sessionId,
        approval: typeof approval === 'string' && approval ? approval : undefined,
        approvalWait:
          typeof approvalWait === 'string' && /^(none|\d{1,12})$/.test(approvalWait)
            ? approvalWait
            : undefined,
        pending,
      });
    });
  };
  return { handler, close: () => wss.close() };
}
