/**
 * Session search for auditors (GET /v1/sessions): the store narrows by time, identity and connection;
 * this adds the identity's kind and what the session's statements were — decision, class, text — by
 * reading the statement records of the candidate sessions, newest first, within a bound.
 * Also: one session's time window and its own CSV rows, for exports of a single session.
 */
import type { AuditRecord, SessionSummary } from '../../src/shared/audit.js';
import { csvHeader, csvRow } from '../../src/shared/audit-export.js';
import type { Store } from '../store/types.js';
import type { ExportWindow } from './export.js';

export interface SessionFilter extends ExportWindow {
  subject?: string;
  connection?: string;
  /** human, or machine (service accounts and workloads); or one exact kind. */
  kind?: 'human' | 'machine' | 'service' | 'workload';
  /** Sessions with at least one statement matching every one of these. */
  decision?: 'allow' | 'deny' | 'approve';
  class?: string;
  /** Case-insensitive substring of the statement's text. */
  text?: string;
}

export interface SearchLimits {
  /** Most sessions returned. Default 200. */
  maxSessions?: number;
  /** Most records read to match statements; past it the answer says `truncated`. Default 50,000. */
  maxRecords?: number;
}

export interface SessionSearchResult {
  sessions: SessionSummary[];
  /** The statement filters stopped before looking at every candidate session: narrow the time range. */
  truncated?: boolean;
}

const PAGE = 1000;

function kindMatches(summary: SessionSummary, kind: SessionFilter['kind']): boolean {
  if (!kind) return true;
  const actual = summary.identity?.kind;
  if (kind === 'machine') return actual === 'service' || actual === 'workload';
  return actual === kind;
}

/** Does this statement record match every statement filter given? */
export function statementMatches(record: AuditRecord, filter: SessionFilter): boolean {
  if (record.type !== 'statement') return false;
  const data = record.data as { decision?: string; class?: string | null; text?: string };
  if (filter.decision && data.decision !== filter.decision) return false;
  if (filter.class && data.class !== filter.class) return false;
  if (
    filter.text &&
    !String(data.text ?? '')
      .toLowerCase()
      .includes(filter.text.toLowerCase())
  )
    return false;
  return true;
}

/** Records of one session, page by page. */
async function* sessionRecords(store: Store, session: string): AsyncGenerator<AuditRecord[]> {
  let afterSeq: number | undefined;
  for (;;) {
    const page = await store.listRecords({ session, afterSeq, limit: PAGE });
    if (page.length) yield page;
    if (page.length < PAGE) return;
    afterSeq = page.at(-1)!.seq;
  }
}

export async function searchSessions(
  store: Store,
  filter: SessionFilter,
  limits: SearchLimits = {},
): Promise<SessionSearchResult> {
  const maxSessions = limits.maxSessions ?? 200;
  const byStatement = Boolean(filter.decision || filter.class || filter.text);
  const candidates = (
    await store.listSessions({
      since: filter.since,
      until: filter.until,
      subject: filter.subject,
      connection: filter.connection,
      limit: byStatement || filter.kind ? 1000 : maxSessions,
    })
  ).filter((s) => kindMatches(s, filter.kind));
  if (!byStatement) return { sessions: candidates.slice(0, maxSessions) };

  const found: SessionSummary[] = [];
  let budget = limits.maxRecords ?? 50_000;
  for (const candidate of candidates) {
    if (found.length >= maxSessions) break;
    if (budget <= 0) return { sessions: found, truncated: true };
    for await (const page of sessionRecords(store, candidate.id)) {
      budget -= page.length;
      if (page.some((r) => statementMatches(r, filter))) {
        found.push(candidate);
        break;
      }
      if (budget <= 0) break;
    }
  }
  return { sessions: found };
}

/** The time window holding every record of a session (until is exclusive), or undefined for no such session. */
export async function sessionWindow(store: Store, session: string): Promise<ExportWindow | undefined> {
  const first = (await store.listRecords({ session, limit: 1 }))[0];
  const last = (await store.listRecords({ session, limit: 1, descending: true }))[0];
  if (!first || !last) return undefined;
  // Record times carry microseconds; one millisecond past the last record's time is past all of them.
  return { since: first.time, until: new Date(Date.parse(last.time) + 1).toISOString() };
}

/** CSV of one session's own records (CSV carries no proof, so it need not hold the whole chain). */
export async function* sessionCsv(store: Store, session: string): AsyncGenerator<string> {
  yield csvHeader();
  for await (const page of sessionRecords(store, session)) yield page.map(csvRow).join('');
}
