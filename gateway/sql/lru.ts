/** A bounded least-recently-used map: a Map keeps insertion order, so the first key is the oldest. */
export class LruCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * An LRU cache that admits a key on its second use (a doorkeeper, as in TinyLFU). Keys used once —
 * statement texts with their values inlined, as `-M simple` clients send them — then neither hold a
 * slot (with everything cached for them) nor push out the ones that repeat. The doorkeeper holds only
 * the keys, as many as the cache, and starts over when full.
 */
export class SecondUseCache<K, V> {
  private readonly lru: LruCache<K, V>;
  private seenOnce = new Set<K>();

  constructor(capacity: number) {
    this.lru = new LruCache(capacity);
  }

  get(key: K): V | undefined {
    return this.lru.get(key);
  }

  set(key: K, value: V): void {
    if (this.seenOnce.delete(key)) {
      this.lru.set(key, value);
      return;
    }
    if (this.seenOnce.size >= this.lru.capacity) this.seenOnce = new Set();
    this.seenOnce.add(key);
  }

  get size(): number {
    return this.lru.size;
  }

  clear(): void {
    this.lru.clear();
    this.seenOnce.clear();
  }
}
