/** The gateway's HTTP API as a list of routes: each module exports its own, main.ts mounts them. */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../../src/shared/identity.js';

/** Who may call a route: anyone, any verified identity, or members of review/audit/admin policies. */
export type RouteAccess = 'public' | 'identity' | 'review' | 'audit' | 'admin';

export interface RouteContext {
  /** Set for every access but 'public'. */
  identity: Identity;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  /** ip:port of the caller. */
  source: string;
  /** The request's headers (cookies, Host, Origin: the console's sign-in reads them). */
  headers: IncomingHttpHeaders;
  /** Aborted when the caller goes away: long answers (server-sent events) stop on it. */
  signal: AbortSignal;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/v1/sessions/:id` — `:name` segments become params. */
  path: string;
  access: RouteAccess;
  handler: (ctx: RouteContext) => Promise<unknown>;
  /**
   * Answers the request itself — status, headers, streaming — before any authentication, which it
   * must then do itself (the MCP endpoint: its 401 carries a WWW-Authenticate challenge).
   */
  raw?: (request: IncomingMessage, response: ServerResponse) => Promise<void>;
}

/** A route that answers the request itself (see Route.raw). */
export function rawRoute(method: Route['method'], path: string, raw: NonNullable<Route['raw']>): Route {
  return {
    method,
    path,
    access: 'public',
    raw,
    handler: async () => {
      throw new HttpError(404, 'not_found', `no such endpoint: ${path}`);
    },
  };
}

/** Throw from a handler to answer with this status; `expose` messages are shown to the caller as they are. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code:
      | 'unauthenticated'
      | 'forbidden'
      | 'not_found'
      | 'bad_request'
      | 'conflict'
      | 'too_many_requests'
      | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}
