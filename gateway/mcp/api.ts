/**
 * The gateway's own HTTP API, called in-process: tools that mirror an endpoint (connections, explain,
 * approval status, access requests) run that endpoint's handler with the caller's identity, so an
 * agent sees exactly what `hoopctl` would — never a second implementation of who may see what.
 */
import type { Identity } from '../../src/shared/identity.js';
import { HttpError, type Route } from '../transport/router.js';

export interface ApiCall {
  identity: Identity;
  source: string;
  params?: Record<string, string>;
  body?: unknown;
}

export type ApiCaller = (method: Route['method'], path: string, call: ApiCall) => Promise<unknown>;

/** Calls the route registered for exactly this method and path template (e.g. `/v1/approvals/:id`). */
export function apiCaller(routes: () => readonly Route[]): ApiCaller {
  return async (method, path, call) => {
    const route = routes().find((r) => r.method === method && r.path === path);
    // Only endpoints any verified identity may call: the tools act as the caller, never above it.
    if (route?.access !== 'identity') {
      throw new HttpError(404, 'not_found', `no endpoint ${method} ${path} for tools`);
    }
    return route.handler({
      identity: call.identity,
      params: call.params ?? {},
      query: new URLSearchParams(),
      body: call.body,
      source: call.source,
      headers: {},
      // In-process calls answer at once (no streams): nothing to abort.
      signal: new AbortController().signal,
    });
  };
}
