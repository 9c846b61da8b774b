/**
 * Reading the log out: a jsonl export that verifies on its own (checkpoints, and for each chain the records
 * between the trusted points around the window, merged across chains in time order), and a csv export
 * for spreadsheets. Both stream page by page.
 */
import type { AuditRecord, Checkpoint } from '../../src/shared/audit.js';
import { chainOf } from '../../src/shared/audit.js';
import {
  csvHeader,
  csvRow,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  exportLine,
} from '../../src/shared/audit-export.js';
import type { AuditStore, ChainInfo } from '../store/types.js';
import type { AuditLog } from './log.js';

export interface ExportWindow {
  /** RFC 3339; since inclusive, until exclusive. */
  since?: string;
  until?: string;
}

const PAGE = 1000;

/** One chain's records with afterSeq < seq <= throughSeq, in seq order, page by page. */
export async function* recordsOfChain(
  store: AuditStore,
  chain: string,
  afterSeq = 0,
  throughSeq?: number,
): AsyncGenerator<AuditRecord> {
  let cursor = afterSeq;
  for (;;) {
    const page = await store.listRecords({ chain, afterSeq: cursor, throughSeq, limit: PAGE });
    yield* page;
    if (page.length < PAGE) return;
    cursor = page.at(-1)!.seq;
  }
}

/** The seqs of `chain` that checkpoints vouch for: its own checkpoints, and with `refs` other chains' references to it. */
function attestedSeqs(checkpoints: readonly Checkpoint[], chain: string, refs = true): number[] {
  const seqs = new Set<number>();
  for (const cp of checkpoints) {
    if (chainOf(cp) === chain && !cp.alarm) seqs.add(cp.seq);
    if (refs) for (const ref of cp.refs ?? []) if (ref.chain === chain) seqs.add(ref.seq);
  }
  return [...seqs].sort((a, b) => a - b);
}

/**
 * The range of one chain a self-verifying export of the window holds: from just after the newest attested
 * record before the window (the anchor) through the first attested record at or after its last record in
 * the window — never past the newest attested record, so the export is sealed throughout.
 */
export interface ChainRange {
  chain: string;
  afterSeq: number;
  throughSeq: number;
}

async function chainRange(
  store: AuditStore,
  info: ChainInfo,
  checkpoints: readonly Checkpoint[],
  window: ExportWindow,
): Promise<ChainRange | undefined> {
  const { chain } = info;
  const first = (await store.listRecords({ chain, ...window, limit: 1 }))[0];
  const last = (await store.listRecords({ chain, ...window, limit: 1, descending: true }))[0];
  if (!first || !last) return undefined;
  const attested = attestedSeqs(checkpoints, chain);
  // The anchor is one of the chain's own checkpoints when there is one: verification wants the chain
  // vouched for by itself, not only by references from others.
  const anchor =
    attestedSeqs(checkpoints, chain, false)
      .filter((s) => s < first.seq)
      .at(-1) ?? attested.filter((s) => s < first.seq).at(-1);
  // No attested record before the window: start at the chain's beginning, which anchors itself (genesis).
  const afterSeq = anchor ?? 0;
  const newest = attested.at(-1);
  const seal =
    attested.find((s) => s >= last.seq) ?? (newest !== undefined && newest > afterSeq ? newest : last.seq);
  return { chain, afterSeq, throughSeq: seal };
}

/**
 * Per chain, the seq range a self-verifying read of the window holds (exports, the compliance report);
 * empty when no chain has a record in the window.
 */
export async function verifiableRange(store: AuditStore, window: ExportWindow): Promise<ChainRange[]> {
  const checkpoints = await store.listCheckpoints();
  const ranges: ChainRange[] = [];
  for (const info of await store.listChains()) {
    const range = await chainRange(store, info, checkpoints, window);
    if (range) ranges.push(range);
  }
  return ranges;
}

/** The records of every range, merged across chains in time order. */
export function recordsInRanges(
  store: AuditStore,
  ranges: readonly ChainRange[],
): AsyncGenerator<AuditRecord> {
  return mergeByTime(ranges.map((r) => recordsOfChain(store, r.chain, r.afterSeq, r.throughSeq)));
}

/** Merge chains' record streams by time; each chain's own order (seq) is kept whatever the clocks did. */
async function* mergeByTime(streams: AsyncGenerator<AuditRecord>[]): AsyncGenerator<AuditRecord> {
  const heads = await Promise.all(streams.map((s) => s.next()));
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (h.done) continue;
      if (best < 0) best = i;
      else {
        const a = h.value;
        const b = (heads[best] as IteratorYieldResult<AuditRecord>).value;
        if (a.time < b.time || (a.time === b.time && chainOf(a) < chainOf(b))) best = i;
      }
    }
    if (best < 0) return;
    yield (heads[best] as IteratorYieldResult<AuditRecord>).value;
    heads[best] = await streams[best]!.next();
  }
}

export async function* exportJsonl(
  store: AuditStore,
  log: Pick<AuditLog, 'seal'> | undefined,
  window: ExportWindow,
): AsyncGenerator<string> {
  await log?.seal();
  const chains = await store.listChains();
  yield exportLine({
    export: {
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      exported_at: new Date().toISOString(),
      ...window,
      complete: !window.since && !window.until,
      chains: chains.map((c) => c.chain),
    },
  });
  for (const key of await store.listSigningKeys()) yield exportLine({ key });
  const checkpoints = await store.listCheckpoints();
  for (const checkpoint of checkpoints) yield exportLine({ checkpoint });
  const ranges: ChainRange[] = [];
  for (const info of chains) {
    const range = await chainRange(store, info, checkpoints, window);
    if (range) ranges.push(range);
  }
  let chunk = '';
  for await (const record of recordsInRanges(store, ranges)) {
    chunk += exportLine({ record });
    if (chunk.length > 64 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

export async function* exportCsv(store: AuditStore, window: ExportWindow): AsyncGenerator<string> {
  yield csvHeader();
  let after: { time: string; chain: string; seq: number } | undefined;
  for (;;) {
    const page = await store.listRecords({ ...window, after, limit: PAGE });
    if (page.length) yield page.map(csvRow).join('');
    if (page.length < PAGE) return;
    const last = page.at(-1)!;
    after = { time: last.time, chain: chainOf(last), seq: last.seq };
  }
}
