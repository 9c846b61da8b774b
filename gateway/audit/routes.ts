/** The auditors' HTTP API (access: audit): sessions, their records, exports, and online verification. */
import type { AuditRecord, SessionSummary, VerifyResult } from '../../src/shared/audit.js';
import { parseTimeBound } from '../../src/shared/duration.js';
import type { Store } from '../store/types.js';
import type { RawResponse } from '../transport/http.js';
import { HttpError, type Route } from '../transport/router.js';
import { recordAuditAccess } from './accessed.js';
import { type ExportWindow, exportCsv, exportJsonl } from './export.js';
import type { AuditLog } from './log.js';
import { type SessionFilter, searchSessions, sessionCsv, sessionWindow } from './search.js';
import { verifyStoredLog } from './verify.js';

/** GET /v1/sessions */
export interface SessionListResponse {
  sessions: SessionSummary[];
  /** Statement filters (decision, class, text) stopped at their reading bound: narrow the time range. */
  truncated?: boolean;
}

const KINDS = ['human', 'machine', 'service', 'workload'];
const DECISIONS = ['allow', 'deny', 'approve'];

/** ?kind= ?decision= ?class= ?text= besides the window, identity and connection. */
function sessionFilter(query: URLSearchParams): SessionFilter {
  const pick = (name: string, allowed: string[]) => {
    const value = query.get(name) || undefined;
    if (value && !allowed.includes(value))
      throw new HttpError(400, 'bad_request', `${name}: expected one of ${allowed.join(', ')}`);
    return value;
  };
  return {
    ...windowOf(query),
    subject: query.get('identity') || undefined,
    connection: query.get('connection') || undefined,
    kind: pick('kind', KINDS) as SessionFilter['kind'],
    decision: pick('decision', DECISIONS) as SessionFilter['decision'],
    class: query.get('class') || undefined,
    text: query.get('text')?.slice(0, 200) || undefined,
  };
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

export function auditRoutes(deps: { store: Store; log: AuditLog }): Route[] {
  const { store, log } = deps;
  return [
    {
      method: 'GET',
      path: '/v1/sessions',
      access: 'audit',
      handler: async (ctx): Promise<SessionListResponse> => {
        const filter = sessionFilter(ctx.query);
        const found = await searchSessions(store, filter);
        await recordAuditAccess(log, ctx, 'sessions.list', { ...filter, sessions: found.sessions.length });
        return found;
      },
    },
    {
      method: 'GET',
      path: '/v1/sessions/:id',
      access: 'audit',
      handler: async (ctx): Promise<SessionRecordsResponse> => {
        const { params } = ctx;
        const records: AuditRecord[] = [];
        for (;;) {
          const page = await store.listRecords({
            session: params.id,
            afterSeq: records.at(-1)?.seq,
            limit: 1000,
          });
          records.push(...page);
          if (page.length < 1000) break;
        }
        // `hoopctl sessions replay` reads the same records and says so (?purpose=replay).
        const action = ctx.query.get('purpose') === 'replay' ? 'sessions.replay' : 'sessions.show';
        await recordAuditAccess(log, ctx, action, { session: params.id, records: records.length });
        if (records.length === 0) throw new HttpError(404, 'not_found', `no session ${params.id}`);
        return { id: params.id!, records };
      },
    },
    {
      method: 'GET',
      path: '/v1/export',
      access: 'audit',
      handler: async (ctx): Promise<RawResponse> => {
        const { query } = ctx;
        // ?session=ID: that session's window (jsonl holds the whole chain of it: only that verifies).
        const session = query.get('session') || undefined;
        const window = session ? await sessionWindow(store, session) : windowOf(query);
        if (!window) throw new HttpError(404, 'not_found', `no session ${session}`);
        const format = query.get('format') ?? 'jsonl';
        if (format === 'jsonl' || format === 'csv')
          await recordAuditAccess(log, ctx, 'sessions.export', { ...window, format, session });
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
            body: session ? sessionCsv(store, session) : exportCsv(store, window),
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
      handler: async (ctx): Promise<VerifyResult> => {
        const result = await verifyStoredLog(store, log);
        await recordAuditAccess(log, ctx, 'audit.verify', { result });
        return result;
      },
    },
  ];
}
