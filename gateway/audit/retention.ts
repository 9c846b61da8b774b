/**
 * Retention: records older than retention.days are deleted, but only up to a signed checkpoint, so the
 * first record kept is anchored (its prev is that checkpoint's hash) and what remains still verifies.
 * Each purge is itself recorded as `retention.purged`.
 */
import type { Store } from '../store/types.js';
import type { AuditLog } from './log.js';

export interface PurgeResult {
  /** Records with seq <= throughSeq are gone. */
  throughSeq: number;
  records: number;
}

const DAY_MS = 86_400_000;

export async function purgeExpired(
  store: Store,
  log: AuditLog,
  options: { days: number; now?: number },
): Promise<PurgeResult | undefined> {
  const cutoff = new Date((options.now ?? Date.now()) - options.days * DAY_MS).toISOString();
  // A checkpoint is signed after the record it covers, so one signed before the cutoff covers only
  // records older than it. The newest such checkpoint is the anchor.
  const anchor = (await store.listCheckpoints()).filter((cp) => cp.time < cutoff).at(-1);
  if (!anchor) return undefined;
  const oldest = (await store.listRecords({ limit: 1 }))[0];
  if (!oldest || oldest.seq > anchor.seq) return undefined;
  const records = await store.deleteRecordsThrough(anchor.seq);
  // Checkpoints before the anchor cover nothing that is left; the anchor itself must stay.
  await store.deleteCheckpointsBefore(anchor.seq);
  await log.append({
    type: 'retention.purged',
    data: { through_seq: anchor.seq, anchor_hash: anchor.hash, records, cutoff, days: options.days },
  });
  return { throughSeq: anchor.seq, records };
}

/** Purge now and then every `everyMs` (default hourly). Failures are reported and retried next time. */
export function startRetention(
  store: Store,
  log: AuditLog,
  options: { days: number; everyMs?: number; onError?: (err: Error) => void },
): { stop(): void } {
  const run = () => {
    purgeExpired(store, log, { days: options.days }).catch((err: Error) => options.onError?.(err));
  };
  run();
  const timer = setInterval(run, options.everyMs ?? 3_600_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
