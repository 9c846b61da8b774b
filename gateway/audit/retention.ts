/**
 * Retention: records older than retention.days are deleted, chain by chain, but only up to a signed
 * checkpoint of that chain, so the first record kept is anchored (its prev is that checkpoint's hash) and
 * what remains still verifies. Each purge is itself recorded as `retention.purged` (in this replica's
 * chain, naming the chain purged). Several replicas may purge at once: only the one that deleted records
 * records it.
 */
import type { AuditStore } from '../store/types.js';
import type { AuditLog } from './log.js';

export interface PurgeResult {
  chain: string;
  /** Records of the chain with seq <= throughSeq are gone. */
  throughSeq: number;
  records: number;
}

const DAY_MS = 86_400_000;

export async function purgeExpired(
  store: AuditStore,
  log: Pick<AuditLog, 'append'>,
  options: { days: number; now?: number },
): Promise<PurgeResult[]> {
  const cutoff = new Date((options.now ?? Date.now()) - options.days * DAY_MS).toISOString();
  const purged: PurgeResult[] = [];
  for (const { chain } of await store.listChains()) {
    // A checkpoint is signed after the record it covers, so one signed before the cutoff covers only
    // records older than it. The newest such checkpoint is the anchor.
    const anchor = (await store.listCheckpoints({ chain }))
      .filter((cp) => cp.time < cutoff && !cp.alarm)
      .sort((a, b) => a.seq - b.seq)
      .at(-1);
    if (!anchor) continue;
    const oldest = (await store.listRecords({ chain, limit: 1 }))[0];
    if (!oldest || oldest.seq > anchor.seq) continue;
    const records = await store.deleteRecordsThrough(chain, anchor.seq);
    // Checkpoints before the anchor cover nothing that is left; the anchor itself must stay.
    await store.deleteCheckpointsBefore(chain, anchor.seq);
    if (records === 0) continue;
    await log.append({
      type: 'retention.purged',
      data: { chain, through_seq: anchor.seq, anchor_hash: anchor.hash, records, cutoff, days: options.days },
    });
    purged.push({ chain, throughSeq: anchor.seq, records });
  }
  return purged;
}

/** Purge now and then every `everyMs` (default hourly). Failures are reported and retried next time. */
export function startRetention(
  store: AuditStore,
  log: Pick<AuditLog, 'append'>,
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
