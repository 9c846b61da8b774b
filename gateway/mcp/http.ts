/**
 * `/mcp`: the gateway as an MCP server over Streamable HTTP (the SDK's transport), and the protected
 * resource metadata that tells clients where to get a token. Every request carries a bearer token of
 * a configured issuer; an MCP session belongs to the identity that opened it, and a request for it
 * with anyone else's token is answered as if it did not exist.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import { MCP_HEADERS, MCP_PATH, type McpClientInfo, PROTECTED_RESOURCE_PATH } from '../../src/shared/mcp.js';
import { bearerToken, sourceOf } from '../transport/http.js';
import { type Route, rawRoute } from '../transport/router.js';
import { DatabaseSessions, type SessionOpener } from './db-sessions.js';
import { bearerChallenge, protectedResourceMetadata, resourceUrl } from './metadata.js';
import { createSessionServer, type RequestAuth, type ServerDeps } from './server.js';

export interface McpDeps extends ServerDeps {
  config: Pick<GatewayConfig, 'listen' | 'identity'>;
  /** Verify a bearer token (records auth.failed, honours revocation); throws with a one-line message. */
  authenticate(token: string, source: string): Promise<Identity>;
  /** Start an ordinary gateway session on a stream: the tunnel's own hook. */
  openSession: SessionOpener;
}

interface McpSession {
  id?: string;
  owner: Pick<Identity, 'issuer' | 'subject'>;
  transport: StreamableHTTPServerTransport;
  server: Server;
  databases: DatabaseSessions;
  lastUsed: number;
  closed: boolean;
}

const sameIdentity = (a: Pick<Identity, 'issuer' | 'subject'>, b: Pick<Identity, 'issuer' | 'subject'>) =>
  a.issuer === b.issuer && a.subject === b.subject;

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const payload = Buffer.from(JSON.stringify(body));
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': payload.length,
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(payload);
}

/** A JSON-RPC error for HTTP answers the transport does not make itself. */
const rpcError = (message: string, code = -32000) => ({ jsonrpc: '2.0', error: { code, message }, id: null });

export function createMcpEndpoint(deps: McpDeps): { routes: Route[]; close(): void } {
  const sessions = new Map<string, McpSession>();
  /** The identity and address of the request a session is serving now (for the sessions it opens). */
  const current = new WeakMap<McpSession, RequestAuth>();
  const { mcp } = deps;

  const closeSession = (session: McpSession) => {
    if (session.closed) return;
    session.closed = true;
    if (session.id) sessions.delete(session.id);
    session.databases.closeAll();
    void session.transport.close().catch(() => undefined);
  };

  // An MCP session unused for mcp.idle_timeout is closed, with its database sessions.
  const sweep = setInterval(
    () => {
      const idleSince = Date.now() - mcp.idle_timeout;
      for (const s of sessions.values()) if (s.lastUsed < idleSince) closeSession(s);
    },
    Math.max(1000, Math.min(60_000, mcp.idle_timeout / 2)),
  );
  sweep.unref();

  /** Room for one more session of this identity: the least recently used one goes first. */
  const makeRoom = (identity: Identity) => {
    const mine = [...sessions.values()].filter((s) => sameIdentity(s.owner, identity));
    mine.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const s of mine.slice(0, Math.max(0, mine.length - mcp.max_sessions + 1))) closeSession(s);
  };

  const openSession = async (identity: Identity, request: IncomingMessage): Promise<McpSession> => {
    makeRoom(identity);
    const pinned = header(request, MCP_HEADERS.connection);
    const transportKind = header(request, MCP_HEADERS.transport) === 'stdio' ? 'stdio' : 'http';
    const session = {} as McpSession;
    const client = (): McpClientInfo => {
      const info = session.server.getClientVersion();
      return {
        name: info?.name ?? 'unknown',
        version: info?.version ?? 'unknown',
        session: session.id ?? '',
        transport: transportKind,
      };
    };
    const databases = new DatabaseSessions(deps.openSession, () => {
      const auth = current.get(session);
      return {
        identity: auth?.identity ?? identity,
        source: auth?.source ?? sourceOf(request),
        mcp: client(),
      };
    });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        session.id = id;
        sessions.set(id, session);
      },
      onsessionclosed: () => closeSession(session),
      maxRequestBodySize: 2 * 1024 * 1024,
    });
    Object.assign(session, {
      owner: { issuer: identity.issuer, subject: identity.subject },
      transport,
      server: createSessionServer(deps, { pinned, sessions: databases, client }),
      databases,
      lastUsed: Date.now(),
      closed: false,
    });
    // Set before connecting: the SDK chains its own close handling after it.
    transport.onclose = () => closeSession(session);
    await session.server.connect(transport);
    return session;
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const resource = resourceUrl(deps.config, request);
    const origin = request.headers.origin;
    // Browsers send Origin; only the gateway's own may talk to it (DNS rebinding).
    if (origin && origin !== resource) {
      sendJson(response, 403, rpcError(`origin ${origin} is not allowed`));
      return;
    }
    const token = bearerToken(request);
    if (!token) {
      sendJson(response, 401, rpcError('missing bearer token: see the WWW-Authenticate header'), {
        'www-authenticate': bearerChallenge(resource),
      });
      return;
    }
    const source = sourceOf(request);
    let identity: Identity;
    try {
      identity = await deps.authenticate(token, source);
    } catch (err) {
      const description = (err as Error).message;
      sendJson(response, 401, rpcError(`token refused: ${description}`), {
        'www-authenticate': bearerChallenge(resource, { code: 'invalid_token', description }),
      });
      return;
    }
    if (request.method === 'GET') {
      // No server-initiated stream: everything this server says answers a request.
      sendJson(response, 405, rpcError('GET is not offered: POST requests'), { allow: 'POST, DELETE' });
      return;
    }
    const id = header(request, 'mcp-session-id');
    let session: McpSession | undefined;
    if (id) {
      session = sessions.get(id);
      // Someone else's session is answered as a missing one: ids are not disclosed.
      if (!session || !sameIdentity(session.owner, identity)) {
        sendJson(response, 404, rpcError('session not found: initialize a new one', -32001));
        return;
      }
    } else if (request.method === 'POST') {
      const pinned = header(request, MCP_HEADERS.connection);
      if (pinned && !(deps.engine.connection(pinned) && deps.canReach(identity, pinned))) {
        sendJson(response, 404, rpcError(`no connection "${pinned}" for ${identity.subject}`));
        return;
      }
      session = await openSession(identity, request);
    } else {
      sendJson(response, 400, rpcError('missing Mcp-Session-Id header'));
      return;
    }
    session.lastUsed = Date.now();
    const auth: RequestAuth = { identity, source };
    current.set(session, auth);
    const authInfo = { token, clientId: identity.clientId ?? '', scopes: [], extra: { ...auth } };
    await session.transport.handleRequest(Object.assign(request, { auth: authInfo }), response);
    // A POST that did not initialize a session leaves it unregistered: nothing to keep.
    if (!session.id && !session.closed) closeSession(session);
  };

  const metadata = async (request: IncomingMessage, response: ServerResponse) => {
    const resource = resourceUrl(deps.config, request);
    sendJson(response, 200, protectedResourceMetadata(deps.config, resource), {
      'cache-control': 'public, max-age=300',
      'access-control-allow-origin': '*',
    });
  };

  return {
    routes: [
      rawRoute('POST', MCP_PATH, handle),
      rawRoute('GET', MCP_PATH, handle),
      rawRoute('DELETE', MCP_PATH, handle),
      rawRoute('GET', PROTECTED_RESOURCE_PATH, metadata),
      // RFC 9728 §3.1: the metadata of the resource at /mcp, should a client look there.
      rawRoute('GET', `${PROTECTED_RESOURCE_PATH}${MCP_PATH}`, metadata),
    ],
    close: () => {
      clearInterval(sweep);
      for (const s of [...sessions.values()]) closeSession(s);
    },
  };
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value ? value : undefined;
}
