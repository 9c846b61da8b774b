/**
 * Streaming the log to a SIEM, and witnessing it. Each replica's sinks receive the records of its own
 * chain and the checkpoints of every chain (a witness: `hoopctl audit verify --witness` checks the store's
 * checkpoints against such a copy, so deleting or replacing checkpoints in the store is found out).
 * Each sink reads the store from its own cursors (kept in the store), beside the append path, never in
 * it: a sink that is down delays nothing and loses nothing — it retries with backoff and catches up from
 * where it stopped. Delivery is at least once; (`chain`, `seq`) is the idempotency key for receivers.
 */
import { createHmac } from 'node:crypto';
import { mkdir, open, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { AuditRecord, Checkpoint } from '../../src/shared/audit.js';
import { chainOf } from '../../src/shared/audit.js';
import { canonicalJson } from '../../src/shared/audit-chain.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { AuditStore } from '../store/types.js';
import type { AuditLog } from './log.js';

export interface SinkTarget {
  /** Also the start of the sink's cursor names in the store. */
  readonly name: string;
  /** Deliver in order; throw to have the same records offered again later. */
  deliver(records: AuditRecord[]): Promise<void>;
  /** Witness checkpoints (of every chain); throw to have them offered again. */
  deliverCheckpoints?(checkpoints: Checkpoint[]): Promise<void>;
  /** The last seq of `chain` the target itself already holds, when it can tell (no duplicates after a crash). */
  lastDelivered?(chain: string): Promise<number>;
}

/** How much of a file sink's end is read to find the last record delivered. */
const TAIL_BYTES = 256 * 1024;

/**
 * One canonical JSON object per line, appended and fsynced: records as they are, checkpoints as
 * `{"checkpoint":{...}}` (the export's line form). For Fluent Bit, Vector and friends, and a witness file.
 */
export function fileSink(path: string): SinkTarget {
  const append = async (text: string) => {
    // A shipper's directory may not exist yet (first start): make it rather than retry forever.
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const file = await open(path, 'a', 0o600);
    try {
      await file.write(text);
      await file.sync();
    } finally {
      await file.close();
    }
  };
  return {
    name: `file:${path}`,
    deliver: (records) => append(records.map((r) => `${canonicalJson(r)}\n`).join('')),
    deliverCheckpoints: (checkpoints) =>
      append(checkpoints.map((checkpoint) => `${canonicalJson({ checkpoint })}\n`).join('')),
    async lastDelivered(chain) {
      // The cursor is saved after the write; if the gateway died in between, the file knows better.
      const size = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      if (size === 0) return 0;
      const file = await open(path, 'r');
      let text: string;
      try {
        const length = Math.min(size, TAIL_BYTES);
        const buffer = Buffer.alloc(length);
        await file.read(buffer, 0, length, size - length);
        text = buffer.toString('utf8');
      } finally {
        await file.close();
      }
      const lines = text.trimEnd().split('\n');
      for (let i = lines.length - 1; i >= 0; i--) {
        try {
          const line = JSON.parse(lines[i]!) as AuditRecord & { checkpoint?: unknown };
          if (!line.checkpoint && chainOf(line) === chain) return Number(line.seq) || 0;
        } catch {
          // a torn or partial line: look further back
        }
      }
      return 0;
    },
  };
}

/**
 * POSTs `{ "records": [...] }`; with a secret, `x-hoop-signature: sha256=<hex HMAC of the body>`.
 * Any answer but 2xx is a failure, retried.
 */
export function webhookSink(url: string, secret?: string, timeoutMs = 10_000): SinkTarget {
  const post = async (payload: { records?: AuditRecord[]; checkpoints?: Checkpoint[] }) => {
    const body = JSON.stringify(payload);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (secret)
      headers['x-hoop-signature'] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new Error(`webhook ${url} answered ${response.status}`);
  };
  return {
    name: `webhook:${url}`,
    deliver: (records) => post({ records }),
    deliverCheckpoints: (checkpoints) => post({ checkpoints }),
  };
}

/** The sinks audit.sinks configures; a relative file path resolves against `baseDir` (default the cwd). */
export function sinksFromConfig(
  config: GatewayConfig['audit']['sinks'],
  env = process.env,
  baseDir = '.',
): SinkTarget[] {
  return config.map((s) =>
    s.type === 'file'
      ? fileSink(resolve(baseDir, s.path))
      : webhookSink(s.url, s.secret_env ? env[s.secret_env] : undefined),
  );
}

export interface SinkOptions {
  /** Records per delivery (default 500). */
  batch?: number;
  /** Look for new records this often even without a nudge from the log (default 1 s). */
  pollMs?: number;
  /** Backoff after a failure: starts here, doubles, capped (defaults 500 ms, 60 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  onError?: (sink: string, err: Error) => void;
}

export interface SinkRunner {
  /** Resolves once every sink has delivered everything committed so far (tests, shutdown). */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

export function startSinks(
  store: AuditStore,
  log: Pick<AuditLog, 'chain' | 'replica' | 'head' | 'onAppend' | 'onCheckpoint'>,
  targets: SinkTarget[],
  options: SinkOptions = {},
): SinkRunner {
  const batch = options.batch ?? 500;
  const pollMs = options.pollMs ?? 1000;
  const firstBackoff = options.backoffMs ?? 500;
  const maxBackoff = options.maxBackoffMs ?? 60_000;
  let stopped = false;
  const wakers = new Set<() => void>();
  const wakeAll = () => {
    for (const wake of wakers) wake();
  };
  const unsubscribe = [log.onAppend(wakeAll), log.onCheckpoint(wakeAll)];
  /** Per target: the last record seq and checkpoint position delivered. */
  const progress = new Map<string, { seq: number; checkpoint: number }>();
  const stopWakers = new Set<() => void>();
  /** Sleep, but wake at once on stop (a backoff can be a minute long). */
  const backoffSleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopWakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopWakers.add(done);
    });

  /** Sleep until a new record or checkpoint, the poll interval, or stop. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakers.add(done);
    });

  // Records: this replica's chain (cursor per chain). Checkpoints: every chain's, in the order stored
  // (cursor per replica: each replica's witness gets them all).
  const recordCursor = (t: SinkTarget) => `${t.name}@${log.chain}`;
  const checkpointCursor = (t: SinkTarget) => `${t.name}#checkpoints@${log.replica}`;

  /** Deliver one page of records and one of checkpoints; false when there was nothing to deliver. */
  const step = async (target: SinkTarget, at: { seq: number; checkpoint: number }): Promise<boolean> => {
    const records = await store.listRecords({ chain: log.chain, afterSeq: at.seq, limit: batch });
    if (records.length) {
      await target.deliver(records);
      at.seq = records.at(-1)!.seq;
      await store.setSinkCursor(recordCursor(target), at.seq);
    }
    let checkpoints: { id: number; checkpoint: Checkpoint }[] = [];
    if (target.deliverCheckpoints) {
      checkpoints = await store.listCheckpointsAfter(at.checkpoint, batch);
      if (checkpoints.length) {
        await target.deliverCheckpoints(checkpoints.map((c) => c.checkpoint));
        at.checkpoint = checkpoints.at(-1)!.id;
        await store.setSinkCursor(checkpointCursor(target), at.checkpoint);
      }
    }
    return records.length > 0 || checkpoints.length > 0;
  };

  const run = async (target: SinkTarget) => {
    let backoff = firstBackoff;
    let at: { seq: number; checkpoint: number } | undefined;
    while (!stopped) {
      try {
        if (!at) {
          at = {
            seq: Math.max(
              await store.getSinkCursor(recordCursor(target)),
              (await target.lastDelivered?.(log.chain)) ?? 0,
            ),
            checkpoint: await store.getSinkCursor(checkpointCursor(target)),
          };
          progress.set(target.name, at);
        }
        if (!(await step(target, at))) await pause(pollMs);
        backoff = firstBackoff;
      } catch (err) {
        options.onError?.(target.name, err as Error);
        // Sleep the whole backoff: a flood of new records must not turn it into a busy retry loop.
        await backoffSleep(backoff);
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  };
  const running = targets.map(run);

  return {
    async caughtUp() {
      const head = log.head().seq;
      const newest = async () => {
        let last = 0;
        for (let page = await store.listCheckpointsAfter(0, 1000); page.length; ) {
          last = page.at(-1)!.id;
          page = await store.listCheckpointsAfter(last, 1000);
        }
        return last;
      };
      const checkpoint = await newest();
      const behind = (t: SinkTarget) => {
        const at = progress.get(t.name);
        return !at || at.seq < head || (t.deliverCheckpoints !== undefined && at.checkpoint < checkpoint);
      };
      while (!stopped && targets.some(behind)) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      stopped = true;
      for (const off of unsubscribe) off();
      for (const wake of [...wakers, ...stopWakers]) wake();
      await Promise.all(running);
    },
  };
}
