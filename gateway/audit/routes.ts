/** The auditors' HTTP API (access: audit): sessions, their records, exports, and online verification. */
import type { AuditRecord, SessionSummary, VerifyResult } from '../../src/shared/audit.js';
import { chainOf } from '../../src/shared/audit.js';
import { parseTimeBound } from '../../src/shared/duration.js';
import type { AuditStore } from '../store/types.js';
import type { RawResponse } from '../transport/http.js';
import { HttpError, type Route } from '../transport/router.js';
import { type ExportWindow, exportCsv, exportJsonl } from './export.js';
import type { AuditLog } from './log.js';

/** GET /v1/sessions */
export interface SessionListResponse {
  sessions: SessionSummary[];
}

/** GET /v1/sessions/:id */
export interface SessionRecordsResponse {
  id: string;
  records: AuditRecord[];
}

function timeParam(query: URLSearchParams, name: string): string | undefined {
  const text = query.get(name);
  if (!text) return undefined;
  try {
    return new Date(parseTimeBound(text)).toISOString();
  } catch (err) {
    throw new HttpError(400, 'bad_request', `${name}: ${(err as Error).message}`);
  }
}

function windowOf(query: URLSearchParams): ExportWindow {
  return { since: timeParam(query, 'since'), until: timeParam(query, 'until') };
}

export function auditRoutes(deps: {
  store: AuditStore;
  log: AuditLog;
  /** Seal and verify every chain with the gateway's pinned keys (audit/index.ts). */
  verify: () => Promise<VerifyResult>;
}): Route[] {
  const { store, log } = deps;
  return [
    {
      method: 'GET',
      path: '/v1/sessions',
      access: 'audit',
      handler: async ({ query }): Promise<SessionListResponse> => ({
        sessions: await store.listSessions({
          ...windowOf(query),
          subject: query.get('identity') || undefined,
          connection: query.get('connection') || undefined,
        }),
      }),
    },
    {
      method: 'GET',
      path: '/v1/sessions/:id',
      access: 'audit',
      handler: async ({ params }): Promise<SessionRecordsResponse> => {
        const records: AuditRecord[] = [];
        for (;;) {
          const last = records.at(-1);
          const page = await store.listRecords({
            session: params.id,
            after: last && { time: last.time, chain: chainOf(last), seq: last.seq },
            limit: 1000,
          });
          records.push(...page);
          if (page.length < 1000) break;
        }
        if (records.length === 0) throw new HttpError(404, 'not_found', `no session ${params.id}`);
        return { id: params.id!, records };
      },
    },
    {
      method: 'GET',
      path: '/v1/export',
      access: 'audit',
      handler: async ({ query }): Promise<RawResponse> => {
        const window = windowOf(query);
        const format = query.get('format') ?? 'jsonl';
        const stamp = new Date().toISOString().replace(/[:.]/g, '-');
        if (format === 'jsonl') {
          return {
            raw: true,
            contentType: 'application/x-ndjson',
            body: exportJsonl(store, log, window),
            filename: `hoop-audit-${stamp}.jsonl`,
          };
        }
        if (format === 'csv') {
          return {
            raw: true,
            contentType: 'text/csv; charset=utf-8',
            body: exportCsv(store, window),
            filename: `hoop-audit-${stamp}.csv`,
          };
        }
        throw new HttpError(400, 'bad_request', `format: expected jsonl or csv, got "${format}"`);
      },
    },
    {
      method: 'GET',
      path: '/v1/audit/verify',
      access: 'audit',
      handler: (): Promise<VerifyResult> => deps.verify(),
    },
  ];
}
