import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CatalogRows, createCatalogSource } from '../../../gateway/catalog/catalog.js';

const EMPTY: CatalogRows = { relations: [], inherits: [], functions: [] };
const TTL = 60_000;
const at = (ms: number) => vi.setSystemTime(new Date(ms));
/** Let settled loads land (a few turns: the fetch, the parser's load, the build). */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** A fetch that counts its calls and answers when released. */
function gatedFetch() {
  let calls = 0;
  const waiting: (() => void)[] = [];
  return {
    fetch: () => {
      calls++;
      return new Promise<CatalogRows>((resolve) => waiting.push(() => resolve(EMPTY)));
    },
    calls: () => calls,
    releaseAll: () => {
      for (const release of waiting.splice(0)) release();
    },
  };
}

describe('the catalog source', () => {
  // Only the clock is faked: the age of a snapshot is all these tests move.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    at(0);
  });
  afterEach(() => vi.useRealTimers());

  it('reloads near the end of the TTL while still serving the snapshot, so no statement waits', async () => {
    const gate = gatedFetch();
    const source = createCatalogSource({ ttlMs: TTL, fetch: gate.fetch });
    const first = source.get();
    gate.releaseAll();
    const snapshot = await first;
    at(TTL * 0.5);
    expect(source.peek?.()).toBe(snapshot);
    expect(gate.calls()).toBe(1);
    at(TTL * 0.9);
    expect(source.peek?.()).toBe(snapshot); // served at once ...
    expect(gate.calls()).toBe(2); // ... while the next one loads
    expect(source.peek?.()).toBe(snapshot);
    expect(gate.calls()).toBe(2); // one reload at a time
    gate.releaseAll();
    await settle();
    const next = source.peek?.();
    expect(next).toBeDefined();
    expect(next).not.toBe(snapshot);
    expect(gate.calls()).toBe(2);
  });

  it('never hands out a load that started before an invalidation', async () => {
    const gate = gatedFetch();
    const source = createCatalogSource({ ttlMs: TTL, fetch: gate.fetch });
    const first = source.get();
    gate.releaseAll();
    await first;
    at(TTL * 0.9);
    source.peek?.(); // starts the early reload
    expect(gate.calls()).toBe(2);
    source.invalidate(); // a DDL finished while it loads
    const after = source.get();
    expect(gate.calls()).toBe(3); // a load of its own, not the one in flight
    gate.releaseAll();
    const catalog = await after;
    expect(source.peek?.()).toBe(catalog);
  });

  it('serves nothing stale past the TTL when the early reload failed', async () => {
    let fail = false;
    const source = createCatalogSource({
      ttlMs: TTL,
      fetch: () => (fail ? Promise.reject(new Error('down')) : Promise.resolve(EMPTY)),
    });
    await source.get();
    fail = true;
    at(TTL * 0.9);
    expect(source.peek?.()).toBeDefined(); // the early reload starts, and fails
    at(TTL);
    expect(source.peek?.()).toBeUndefined();
    await expect(source.get()).rejects.toThrow('down');
  });
});
