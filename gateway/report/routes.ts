/**
 * GET /v1/report (access: audit) — the compliance report, computed from the log over the period and
 * signed with the gateway's audit key. Query parameters are the CLI's flags: framework (repeatable or
 * comma-separated, or `all`), since, until, connection, format (json | html | md; default json).
 */
import { parseTimeBound } from '../../src/shared/duration.js';
import {
  CONTENT_TYPES,
  type FrameworkId,
  HTML_CSP,
  parseFrameworks,
  periodBound,
  REPORT_FORMATS,
  type ReportFormat,
  type ReportSigner,
  renderSigned,
} from '../../src/shared/report/index.js';
import { recordAuditAccess } from '../audit/accessed.js';
import type { AuditLog } from '../audit/log.js';
import type { RawResponse } from '../transport/http.js';
import { HttpError, type Route } from '../transport/router.js';
import { computeReport, type ReportDeps } from './compute.js';

/** The default period: the last 90 days. */
const DEFAULT_DAYS = 90;

function bad(message: string): never {
  throw new HttpError(400, 'bad_request', message);
}

function timeParam(query: URLSearchParams, name: string, fallback: number, now: number): number {
  const text = query.get(name);
  if (!text) return fallback;
  try {
    return parseTimeBound(text, now);
  } catch (err) {
    return bad(`${name}: ${(err as Error).message}`);
  }
}

export interface ParsedReportQuery {
  frameworks: FrameworkId[];
  from: string;
  to: string;
  connection?: string;
  format: ReportFormat;
}

export function parseReportQuery(query: URLSearchParams, now = Date.now()): ParsedReportQuery {
  let frameworks: FrameworkId[];
  try {
    frameworks = parseFrameworks(query.getAll('framework').length ? query.getAll('framework') : ['all']);
  } catch (err) {
    return bad(`framework: ${(err as Error).message}`);
  }
  const format = (query.get('format') ?? 'json') as ReportFormat;
  if (!REPORT_FORMATS.includes(format)) bad(`format: expected ${REPORT_FORMATS.join(', ')}, got "${format}"`);
  // A report describes what has happened: a period that has not ended yet ends when the report is made,
  // so its figures can be recomputed later from an export of the same (or a wider) window.
  const until = Math.min(timeParam(query, 'until', now, now), now);
  const since = timeParam(query, 'since', until - DEFAULT_DAYS * 86_400_000, now);
  if (since >= until) bad('since must be before until');
  return {
    frameworks,
    from: periodBound(since),
    to: periodBound(until),
    connection: query.get('connection') || undefined,
    format,
  };
}

export function reportRoutes(deps: ReportDeps & { log: AuditLog; signer: ReportSigner }): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/report',
      access: 'audit',
      handler: async (ctx): Promise<RawResponse> => {
        const q = parseReportQuery(ctx.query);
        if (q.connection && !deps.config.connections.some((c) => c.name === q.connection))
          throw new HttpError(404, 'not_found', `no connection named "${q.connection}"`);
        await recordAuditAccess(deps.log, ctx, 'report', {
          frameworks: q.frameworks,
          since: q.from,
          until: q.to,
          connection: q.connection,
          format: q.format,
        });
        const report = await computeReport(deps, {
          frameworks: q.frameworks,
          scope: { from: q.from, to: q.to, connection: q.connection },
        });
        const stamp = q.to.slice(0, 10);
        return {
          raw: true,
          contentType: CONTENT_TYPES[q.format],
          body: renderSigned(report, q.format, deps.signer),
          filename: `hoop-report-${report.framework.replace(/,/g, '+')}-${stamp}.${q.format}`,
          headers: q.format === 'html' ? { 'content-security-policy': HTML_CSP } : undefined,
        };
      },
    },
  ];
}
