/**
 * Reading the log out: a jsonl export that verifies on its own (keys, checkpoints, and the records between
 * the signed checkpoints around the window), and a csv export for spreadsheets. Both stream page by page.
 */
import type { AuditRecord } from '../../src/shared/audit.js';
import {
  csvHeader,
  csvRow,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  exportLine,
} from '../../src/shared/audit-export.js';
import type { Store } from '../store/types.js';
import type { AuditLog } from './log.js';

export interface ExportWindow {
  /** RFC 3339; since inclusive, until exclusive. */
  since?: string;
  until?: string;
}

const PAGE = 1000;

/** Records with afterSeq < seq <= throughSeq, page by page. */
export async function* recordsBetween(
  store: Store,
  afterSeq: number,
  throughSeq?: number,
): AsyncGenerator<AuditRecord> {
  let cursor = afterSeq;
  for (;;) {
    const page = await store.listRecords({ afterSeq: cursor, throughSeq, limit: PAGE });
    yield* page;
    if (page.length < PAGE) return;
    cursor = page.at(-1)!.seq;
  }
}

/**
 * The seq range a self-verifying export of the window must hold: from just after the newest checkpoint
 * before the window (the anchor) through the first checkpoint at or after its last record (the seal).
 */
export async function verifiableRange(store: Store, window: ExportWindow) {
  const first = (await store.listRecords({ ...window, limit: 1 }))[0];
  const last = (await store.listRecords({ ...window, limit: 1, descending: true }))[0];
  if (!first || !last) return undefined;
  const checkpoints = await store.listCheckpoints();
  const anchor = checkpoints.filter((cp) => cp.seq < first.seq).at(-1);
  const seal = checkpoints.find((cp) => cp.seq >= last.seq);
  // No checkpoint before the window: start at the beginning of the log, which anchors itself (genesis).
  return { afterSeq: anchor?.seq ?? 0, throughSeq: seal?.seq ?? last.seq };
}

export async function* exportJsonl(
  store: Store,
  log: AuditLog,
  window: ExportWindow,
): AsyncGenerator<string> {
  await log.seal();
  yield exportLine({
    export: {
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      exported_at: new Date().toISOString(),
      ...window,
    },
  });
  for (const key of await store.listSigningKeys()) yield exportLine({ key });
  const range = await verifiableRange(store, window);
  if (!range) return;
  for (const checkpoint of await store.listCheckpoints({
    fromSeq: range.afterSeq,
    throughSeq: range.throughSeq,
  })) {
    yield exportLine({ checkpoint });
  }
  let chunk = '';
  for await (const record of recordsBetween(store, range.afterSeq, range.throughSeq)) {
    chunk += exportLine({ record });
    if (chunk.length > 64 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

export async function* exportCsv(store: Store, window: ExportWindow): AsyncGenerator<string> {
  yield csvHeader();
  let cursor = 0;
  for (;;) {
    const page = await store.listRecords({ ...window, afterSeq: cursor, limit: PAGE });
    if (page.length) yield page.map(csvRow).join('');
    if (page.length < PAGE) return;
    cursor = page.at(-1)!.seq;
  }
}
