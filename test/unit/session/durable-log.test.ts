/** The LSN adapter over append(): numbers in order, waiters woken in order, a lost batch reported. */
import { describe, expect, it } from 'vitest';
import { durableLogOver } from '../../../gateway/session/gate/durable-log.js';

function deferredLog() {
  const pending: { resolve: () => void; reject: (err: Error) => void }[] = [];
  return {
    pending,
    append: () =>
      new Promise<unknown>((resolve, reject) => pending.push({ resolve: () => resolve(undefined), reject })),
  };
}

describe('durableLogOver', () => {
  it('hands out increasing LSNs at once and wakes waiters when their records are durable, in order', async () => {
    const raw = deferredLog();
    const log = durableLogOver(raw);
    const lsns = [1, 2, 3].map(() => log.enqueue({ type: 'statement', data: {} }));
    expect(lsns).toEqual([1, 2, 3]);
    const woken: string[] = [];
    log.whenDurable(3, (err) => woken.push(`3:${err ? 'err' : 'ok'}`));
    log.whenDurable(1, (err) => woken.push(`1:${err ? 'err' : 'ok'}`));
    raw.pending[0]!.resolve();
    await Promise.resolve();
    expect(woken).toEqual(['1:ok']);
    raw.pending[2]!.resolve(); // out of order: 3 waits for 2
    await Promise.resolve();
    expect(woken).toEqual(['1:ok']);
    raw.pending[1]!.resolve();
    await Promise.resolve();
    expect(woken).toEqual(['1:ok', '3:ok']);
    expect(log.durableLsn).toBe(3);
    // Already durable: called back at once.
    let now = false;
    log.whenDurable(2, () => {
      now = true;
    });
    expect(now).toBe(true);
  });

  it('reports the error of a record whose batch failed', async () => {
    const raw = deferredLog();
    const log = durableLogOver(raw);
    const lsn = log.enqueue({ type: 'statement', data: {} });
    let failure: Error | undefined;
    log.whenDurable(lsn, (err) => {
      failure = err;
    });
    raw.pending[0]!.reject(new Error('disk full'));
    await Promise.resolve();
    await Promise.resolve();
    expect(failure?.message).toBe('disk full');
  });
});
