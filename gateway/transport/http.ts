/**
 * The gateway's front door: one HTTPS (or, on loopback only, plain HTTP) server that answers the
 * JSON API and upgrades tunnel requests to WebSocket. Authentication happens here, once, for both.
 */
import { readFileSync } from 'node:fs';
import {
  createServer as createHttp,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { Duplex } from 'node:stream';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import { limitUnauthenticated, RETRY_AFTER_SECONDS, TOO_MANY_LOGINS } from './pre-auth.js';
import { HttpError, type Route, type RouteAccess, type RouteContext } from './router.js';

export interface Authenticator {
  /** Verify a bearer token; throws an error with a one-line `message` when it is refused. */
  authenticate(token: string, source: string): Promise<Identity>;
  /** May this identity use a route of this access level? */
  allowed(identity: Identity, access: RouteAccess): boolean;
  /**
   * A browser's console session (cookie) instead of a bearer token: its current access token, or
   * undefined without one. Throws an HttpError when a state change lacks the session's CSRF proof.
   */
  sessionToken?(request: IncomingMessage, stateChanging: boolean): Promise<string | undefined>;
}

/** An upgrade not yet logged in: its deadline, and what to call once the tunnel's session has. */
export interface PendingLogin {
  deadline: number;
  loggedIn(): void;
}

export type UpgradeHandler = (
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  identity: Identity,
  login?: PendingLogin,
) => void;

interface CompiledRoute {
  route: Route;
  pattern: RegExp;
  names: string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split('/')
    .map((part) => {
      if (!part.startsWith(':')) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(part.slice(1));
      return '([^/]+)';
    })
    .join('/');
  return { route, pattern: new RegExp(`^${source}$`), names };
}

export function sourceOf(request: IncomingMessage): string {
  const socket = request.socket;
  const host = socket.remoteAddress ?? 'unknown';
  return `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? 0}`;
}

export function bearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

const MAX_BODY = 1 << 20;

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'bad_request', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'bad_request', 'request body is not valid JSON');
  }
  // No field of the API takes a NUL, and PostgreSQL text (a store, a database) cannot hold one: refuse it
  // here, named, rather than as a store error deep in a service. JSON can only carry it escaped.
  if (/\\u0000/i.test(text) && containsNul(body)) {
    throw new HttpError(400, 'bad_request', 'request body text may not contain NUL (\\u0000)');
  }
  return body;
}

function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value && typeof value === 'object')
    return Object.entries(value).some(([k, v]) => k.includes('\u0000') || containsNul(v));
  return false;
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = Buffer.from(JSON.stringify(body));
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': payload.length,
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(payload);
}

/** A handler may return this to answer with something other than JSON (exports, streams). */
export interface RawResponse {
  raw: true;
  /** Default 200 (e.g. /readyz answers 503 with a body that says why). */
  status?: number;
  contentType: string;
  body: string | Buffer | AsyncIterable<string | Buffer>;
  filename?: string;
  /** Extra headers (they win over the defaults, e.g. cache-control or a Content-Security-Policy). */
  headers?: Record<string, string | string[]>;
}

/** Resolves when the response can take more, or when the caller went away. */
function drained(response: ServerResponse, gone: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      gone.removeEventListener('abort', done);
      resolve();
    };
    response.once('drain', done);
    gone.addEventListener('abort', done);
  });
}

/** Answer an upgrade request (a tunnel) with an HTTP error and close: the JSON body is what clients print. */
export function refuseUpgrade(
  socket: Duplex,
  status: 401 | 403 | 404 | 503,
  code: HttpError['code'],
  message: string,
  retryAfterSeconds?: number,
): void {
  const reasons = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };
  const reason = reasons[status];
  const body = JSON.stringify({ error: { code, message } });
  const retry = retryAfterSeconds === undefined ? '' : `retry-after: ${retryAfterSeconds}\r\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n${retry}content-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function isRaw(value: unknown): value is RawResponse {
  return typeof value === 'object' && value !== null && (value as RawResponse).raw === true;
}

/** A path parameter, percent-decoded; malformed encoding (`%ZZ`) is the client's error, not a 500. */
function decodePathPart(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new HttpError(400, 'bad_request', `malformed percent-encoding in the path: ${text.slice(0, 80)}`);
  }
}

export function createGatewayServer(
  config: GatewayConfig['listen'],
  routes: Route[],
  auth: Authenticator,
  onTunnel: UpgradeHandler,
  log: (message: string, fields?: Record<string, unknown>) => void,
): Server {
  const compiled = routes.map(compile);

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://gateway');
    const method = request.method ?? 'GET';
    const matches = compiled.filter((r) => r.pattern.test(url.pathname));
    if (matches.length === 0) throw new HttpError(404, 'not_found', `no such endpoint: ${url.pathname}`);
    const match = matches.find((r) => r.route.method === method);
    if (!match) throw new HttpError(405, 'bad_request', `method ${method} not allowed on ${url.pathname}`);
    const groups = match.pattern.exec(url.pathname)!;
    const params: Record<string, string> = {};
    match.names.forEach((name, i) => {
      params[name] = decodePathPart(groups[i + 1]!);
    });
    if (match.route.raw) {
      await match.route.raw(request, response);
      return;
    }
    const source = sourceOf(request);
    let identity = undefined as unknown as Identity;
    if (match.route.access !== 'public') {
      const token = bearerToken(request) ?? (await auth.sessionToken?.(request, method !== 'GET'));
      if (!token) throw new HttpError(401, 'unauthenticated', 'missing bearer token');
      try {
        identity = await auth.authenticate(token, source);
      } catch (err) {
        throw new HttpError(401, 'unauthenticated', (err as Error).message);
      }
      if (!auth.allowed(identity, match.route.access)) {
        throw new HttpError(
          403,
          'forbidden',
          `this needs the ${match.route.access} role, which ${identity.subject} does not have`,
        );
      }
    }
    const body = method === 'GET' ? undefined : await readJson(request);
    const gone = new AbortController();
    response.once('close', () => gone.abort());
    const ctx: RouteContext = {
      identity,
      params,
      query: url.searchParams,
      body,
      source,
      headers: request.headers,
      signal: gone.signal,
    };
    const result = await match.route.handler(ctx);
    if (isRaw(result)) {
      response.writeHead(result.status ?? 200, {
        'content-type': result.contentType,
        'cache-control': 'no-store',
        ...(result.filename ? { 'content-disposition': `attachment; filename="${result.filename}"` } : {}),
        ...result.headers,
      });
      if (typeof result.body === 'string' || Buffer.isBuffer(result.body)) response.end(result.body);
      else {
        for await (const chunk of result.body) {
          if (gone.signal.aborted) break;
          if (!response.write(chunk)) await drained(response, gone.signal);
        }
        response.end();
      }
      return;
    }
    sendJson(
      response,
      method === 'POST' && result && (result as { created?: boolean }).created ? 201 : 200,
      result ?? {},
    );
  };

  const listener = (request: IncomingMessage, response: ServerResponse) => {
    if (limit.refused(request.socket)) {
      refuseTooMany(response);
      return;
    }
    handle(request, response).catch((err: unknown) => {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      if (err instanceof HttpError) {
        sendJson(response, err.status, { error: { code: err.code, message: err.message } });
        return;
      }
      log('api handler failed', {
        error: (err as Error).message,
        stack: (err as Error).stack,
        path: request.url,
      });
      sendJson(response, 500, {
        error: { code: 'internal', message: 'internal error (see the gateway log)' },
      });
    });
  };

  const server = config.tls
    ? createHttps(
        {
          cert: readFileSync(config.tls.cert),
          key: readFileSync(config.tls.key),
          ...slowClientLimits(config),
        },
        listener,
      )
    : createHttp(slowClientLimits(config), listener);
  const limit = limitUnauthenticated(
    server,
    { max: config.max_unauthenticated, timeoutMs: config.login_timeout },
    Boolean(config.tls),
  );

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const place = limit.claim(socket);
    if (!place) {
      refuseUpgrade(socket, 503, 'unavailable', TOO_MANY_LOGINS, RETRY_AFTER_SECONDS);
      return;
    }
    const refuse = (status: number, message: string) => {
      const body = JSON.stringify({
        error: { code: status === 401 ? 'unauthenticated' : 'forbidden', message },
      });
      socket.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Forbidden'}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    const token = bearerToken(request);
    if (!token) {
      refuse(401, 'missing bearer token');
      return;
    }
    auth
      .authenticate(token, sourceOf(request))
      .then((identity) => {
        // The tunnel's startup keeps the same deadline and gives the place back once logged in.
        place.handOver();
        onTunnel(request, socket, head, identity, { deadline: place.deadline, loggedIn: place.release });
      })
      .catch((err: Error) => refuse(401, err.message));
  });
  return server;
}

/**
 * Slow clients that hold a socket without authenticating: the first request (head and body) is bounded
 * by the pre-auth deadline (pre-auth.ts); these bound later ones, their bodies, and the TLS handshake.
 */
function slowClientLimits(config: GatewayConfig['listen']) {
  const headersTimeout = config.login_timeout;
  return {
    headersTimeout,
    requestTimeout: Math.max(headersTimeout, 60_000),
    // Node checks both timeouts on this interval (default 30 s, too coarse for a 30 s bound).
    connectionsCheckingInterval: Math.min(headersTimeout, 5_000),
    handshakeTimeout: config.login_timeout,
  };
}

function refuseTooMany(response: ServerResponse): void {
  sendJson(
    response,
    503,
    { error: { code: 'unavailable', message: TOO_MANY_LOGINS } },
    {
      'retry-after': String(RETRY_AFTER_SECONDS),
      connection: 'close',
    },
  );
}
