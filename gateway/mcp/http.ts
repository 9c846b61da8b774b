/**
 * `/mcp`: the gateway as an MCP server over Streamable HTTP (the SDK's transport), and the protected
 * resource metadata that tells clients where to get a token. Every request carries a bearer token of
 * a configured issuer, verified for that request; an MCP session belongs to the identity that opened
 * it, and a request for it with anyone else's token is answered as if it did not exist.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import { MCP_HEADERS, MCP_PATH, PROTECTED_RESOURCE_PATH } from '../../src/shared/mcp.js';
import { bearerToken, sourceOf } from '../transport/http.js';
import { type Route, rawRoute } from '../transport/router.js';
import { bearerChallenge, protectedResourceMetadata, resourceUrl } from './metadata.js';
import type { RequestAuth } from './server.js';
import { type McpSession, McpSessionRegistry, type SessionsDeps } from './sessions.js';

export interface McpDeps extends SessionsDeps {
  config: Pick<GatewayConfig, 'listen' | 'identity'>;
  /** Verify a bearer token (records auth.failed, honours revocation); throws with a one-line message. */
  authenticate(token: string, source: string): Promise<Identity>;
}

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

/** An HTTP refusal, with a JSON-RPC error body as the transport's own refusals have. */
class Refusal {
  constructor(
    readonly status: number,
    readonly message: string,
    readonly headers: Record<string, string> = {},
    readonly code = -32000,
  ) {}
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value ? value : undefined;
}

export function createMcpEndpoint(deps: McpDeps): { routes: Route[]; close(): void } {
  const registry = new McpSessionRegistry(deps);

  /** Who is asking: a verified token, from a page of the gateway's own origin if from a browser. */
  const authenticate = async (request: IncomingMessage): Promise<RequestAuth & { token: string }> => {
    const resource = resourceUrl(deps.config, request);
    const origin = request.headers.origin;
    // Browsers send Origin; only the gateway's own may talk to it (DNS rebinding).
    if (origin && origin !== resource) throw new Refusal(403, `origin ${origin} is not allowed`);
    const token = bearerToken(request);
    if (!token) {
      throw new Refusal(401, 'missing bearer token: see the WWW-Authenticate header', {
        'www-authenticate': bearerChallenge(resource),
      });
    }
    const source = sourceOf(request);
    try {
      return { identity: await deps.authenticate(token, source), source, token };
    } catch (err) {
      const description = (err as Error).message;
      throw new Refusal(401, `token refused: ${description}`, {
        'www-authenticate': bearerChallenge(resource, { code: 'invalid_token', description }),
      });
    }
  };

  /** The session a request belongs to: the one its Mcp-Session-Id names, or a new one (initialize). */
  const sessionFor = async (request: IncomingMessage, auth: RequestAuth): Promise<McpSession> => {
    const id = header(request, 'mcp-session-id');
    if (id) {
      const session = registry.find(id, auth.identity);
      if (!session) throw new Refusal(404, 'session not found: initialize a new one', {}, -32001);
      return session;
    }
    if (request.method !== 'POST') throw new Refusal(400, 'missing Mcp-Session-Id header');
    const pinned = header(request, MCP_HEADERS.connection);
    if (pinned && !(deps.engine.connection(pinned) && deps.canReach(auth.identity, pinned))) {
      throw new Refusal(404, `no connection "${pinned}" for ${auth.identity.subject}`);
    }
    const transport = header(request, MCP_HEADERS.transport) === 'stdio' ? 'stdio' : 'http';
    return registry.open(auth, { pinned, transport });
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    try {
      const { token, ...auth } = await authenticate(request);
      // No server-initiated stream: everything this server says answers a request.
      if (request.method === 'GET')
        throw new Refusal(405, 'GET is not offered: POST requests', { allow: 'POST, DELETE' });
      const session = await sessionFor(request, auth);
      session.serve(auth);
      const authInfo = { token, clientId: auth.identity.clientId ?? '', scopes: [], extra: { ...auth } };
      await session.transport.handleRequest(Object.assign(request, { auth: authInfo }), response);
      // A POST that did not initialize a session leaves it unregistered: nothing to keep.
      if (!session.id) registry.close(session);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      const body = { jsonrpc: '2.0', error: { code: err.code, message: err.message }, id: null };
      sendJson(response, err.status, body, err.headers);
    }
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
    close: () => registry.closeAll(),
  };
}
