/**
 * Streaming the log to a SIEM. Each sink reads the store from its own cursor (kept in the store), so it
 * runs beside the append path, never in it: a sink that is down delays nothing and loses nothing — it
 * retries with backoff and catches up from where it stopped. Delivery is at least once; `seq` is the
 * idempotency key for receivers.
 */
import { createHmac } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { AuditRecord } from '../../src/shared/audit.js';
import { canonicalJson } from '../../src/shared/audit-chain.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { Store } from '../store/types.js';
import type { AuditLog } from './log.js';

export interface SinkTarget {
  /** Also the sink's cursor name in the store. */
  readonly name: string;
  /** Deliver in order; throw to have the same records offered again later. */
  deliver(records: AuditRecord[]): Promise<void>;
  /** The last seq the target itself already holds, when it can tell (skips duplicates after a crash). */
  lastDelivered?(): Promise<number>;
}

/** One JSON record per line (canonical JSON), appended and fsynced: for Fluent Bit, Vector, and friends. */
export function fileSink(path: string): SinkTarget {
  return {
    name: `file:${path}`,
    async deliver(records) {
      // A shipper's directory may not exist yet (first start): make it rather than retry forever.
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const file = await open(path, 'a', 0o600);
      try {
        await file.write(records.map((r) => `${canonicalJson(r)}\n`).join(''));
        await file.sync();
      } finally {
        await file.close();
      }
    },
    async lastDelivered() {
      // The cursor is saved after the write; if the gateway died in between, the file knows better.
      const size = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      if (size === 0) return 0;
      const text = await readFile(path, 'utf8');
      const last = text.trimEnd().split('\n').at(-1);
      try {
        return Number((JSON.parse(last ?? '') as AuditRecord).seq) || 0;
      } catch {
        return 0; // a torn last line: deliver again from the cursor
      }
    },
  };
}

/**
 * POSTs `{ "records": [...] }`; with a secret, `x-hoop-signature: sha256=<hex HMAC of the body>`.
 * Any answer but 2xx is a failure, retried.
 */
export function webhookSink(url: string, secret?: string, timeoutMs = 10_000): SinkTarget {
  return {
    name: `webhook:${url}`,
    async deliver(records) {
      const body = JSON.stringify({ records });
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
    },
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
  store: Store,
  log: AuditLog,
  targets: SinkTarget[],
  options: SinkOptions = {},
): SinkRunner {
  const batch = options.batch ?? 500;
  const pollMs = options.pollMs ?? 1000;
  const firstBackoff = options.backoffMs ?? 500;
  const maxBackoff = options.maxBackoffMs ?? 60_000;
  let stopped = false;
  const wakers = new Set<() => void>();
  const unsubscribe = log.onAppend(() => {
    for (const wake of wakers) wake();
  });
  const cursors = new Map<string, number>();
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

  /** Sleep until a new record, the poll interval, or stop. */
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

  const run = async (target: SinkTarget) => {
    let backoff = firstBackoff;
    let cursor: number | undefined;
    while (!stopped) {
      try {
        if (cursor === undefined) {
          cursor = Math.max(await store.getSinkCursor(target.name), (await target.lastDelivered?.()) ?? 0);
          cursors.set(target.name, cursor);
        }
        const records = await store.listRecords({ afterSeq: cursor, limit: batch });
        if (records.length === 0) {
          await pause(pollMs);
          continue;
        }
        await target.deliver(records);
        cursor = records.at(-1)!.seq;
        cursors.set(target.name, cursor);
        await store.setSinkCursor(target.name, cursor);
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
      const head = (await store.head()).seq;
      while (!stopped && targets.some((t) => (cursors.get(t.name) ?? -1) < head)) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      stopped = true;
      unsubscribe();
      for (const wake of [...wakers, ...stopWakers]) wake();
      await Promise.all(running);
    },
  };
}
