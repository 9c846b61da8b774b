/**
 * The operator's endpoints: `/healthz` (the process answers), `/readyz` (send it traffic: 200, or 503 with
 * the failed checks) and `/metrics` (Prometheus text). Health and readiness are served on the API listener
 * and on the diagnostics listener; metrics only on the diagnostics listener, which an operator keeps
 * inside the cluster (connection names and counts are not for the internet).
 */
import type { RawResponse } from '../transport/http.js';
import type { Route } from '../transport/router.js';
import type { Readiness } from './health.js';

export interface HealthDeps {
  version: string;
  readiness: Readiness;
}

/** 200 while the process answers, draining or not (a liveness probe must not kill a draining gateway). */
export function healthBody(version: string): { ok: true; version: string } {
  return { ok: true, version };
}

/** 200 with the checks when ready; 503 with the same body (and `failed`) when not. */
export function readinessResponse(readiness: Readiness): RawResponse {
  const report = readiness.report();
  return {
    raw: true,
    status: report.ready ? 200 : 503,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify(report),
  };
}

export function healthRoutes(deps: HealthDeps): Route[] {
  return [
    { method: 'GET', path: '/healthz', access: 'public', handler: async () => healthBody(deps.version) },
    {
      method: 'GET',
      path: '/readyz',
      access: 'public',
      handler: async () => readinessResponse(deps.readiness),
    },
  ];
}
