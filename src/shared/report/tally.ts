/**
 * Small bounded containers the evidence collector counts with: a capped list of exceptions (all
 * counted, the first few kept) and a capped map (keys past the cap are counted under one overflow key),
 * so a report over a year of records holds the same few kilobytes as one over a day. Pure.
 */
import type { ReportException } from './types.js';
import { EXCEPTIONS_KEPT } from './types.js';

export class ExceptionList {
  readonly kept: ReportException[] = [];
  total = 0;

  constructor(private readonly limit = EXCEPTIONS_KEPT) {}

  add(seq: number, why: string, session?: string): void {
    this.total++;
    if (this.kept.length < this.limit) this.kept.push(session ? { session, seq, why } : { seq, why });
  }
}

/** Keys past `limit` distinct ones share OVERFLOW_KEY: memory stays bounded whatever the log holds. */
export const OVERFLOW_KEY = '(others)';

export class CappedMap<V> {
  readonly entries = new Map<string, V>();

  constructor(
    private readonly make: () => V,
    private readonly limit = 10_000,
  ) {}

  get(key: string): V {
    let value = this.entries.get(key);
    if (value === undefined) {
      const k = this.entries.size >= this.limit ? OVERFLOW_KEY : key;
      value = this.entries.get(k);
      if (value === undefined) {
        value = this.make();
        this.entries.set(k, value);
      }
    }
    return value;
  }
}

/** A counter per key, capped like CappedMap. */
export class Counter {
  private readonly map: CappedMap<{ n: number }>;

  constructor(limit = 10_000) {
    this.map = new CappedMap(() => ({ n: 0 }), limit);
  }

  add(key: string, n = 1): void {
    this.map.get(key).n += n;
  }

  /** Sorted by key, for output that does not depend on arrival order. */
  toObject(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const key of [...this.map.entries.keys()].sort()) out[key] = this.map.entries.get(key)!.n;
    return out;
  }

  /** The `n` largest, ties broken by key. */
  top(n: number): { key: string; count: number }[] {
    return [...this.map.entries]
      .map(([key, v]) => ({ key, count: v.n }))
      .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .slice(0, n);
  }

  get size(): number {
    return this.map.entries.size;
  }
}

/** Sum of a counter object's values. */
export function total(counts: Record<string, number>): number {
  let sum = 0;
  for (const v of Object.values(counts)) sum += v;
  return sum;
}
