/**
 * The optional diagnostics listener (`diagnostics.listen`): `/healthz`, `/readyz` and `/metrics` for
 * kubelet probes and Prometheus, apart from the API listener so that it can stay inside the cluster (a
 * NetworkPolicy admits only the monitoring namespace) and answer while the API listener is busy.
 * GET and HEAD only, no authentication, no request body: nothing here changes state.
 */
import { readFileSync } from 'node:fs';
import {
  createServer as createHttp,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { Readiness } from './health.js';
import { healthBody } from './routes.js';

export interface DiagnosticsOptions {
  version: string;
  readiness: Readiness;
  /** The Prometheus exposition; absent: /metrics is 404. */
  metrics?: { render(): Promise<string>; contentType: string };
  tls?: { cert: string; key: string };
  onError?: (err: Error) => void;
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

const JSON_TYPE = 'application/json; charset=utf-8';

export function createDiagnosticsServer(options: DiagnosticsOptions): Server {
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? '/', 'http://diagnostics').pathname;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(response, 405, JSON_TYPE, JSON.stringify({ error: { code: 'bad_request', message: 'GET only' } }));
      return;
    }
    if (path === '/healthz') {
      send(response, 200, JSON_TYPE, JSON.stringify(healthBody(options.version)));
    } else if (path === '/readyz') {
      const report = options.readiness.report();
      send(response, report.ready ? 200 : 503, JSON_TYPE, JSON.stringify(report));
    } else if (path === '/metrics' && options.metrics) {
      send(response, 200, options.metrics.contentType, await options.metrics.render());
    } else {
      const message = `no such endpoint: ${path} (try /healthz, /readyz, /metrics)`;
      send(response, 404, JSON_TYPE, JSON.stringify({ error: { code: 'not_found', message } }));
    }
  };
  const listener = (request: IncomingMessage, response: ServerResponse) => {
    handle(request, response).catch((err: Error) => {
      options.onError?.(err);
      if (!response.headersSent)
        send(response, 500, JSON_TYPE, JSON.stringify({ error: { code: 'internal' } }));
      else response.destroy();
    });
  };
  return options.tls
    ? createHttps({ cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key) }, listener)
    : createHttp(listener);
}
